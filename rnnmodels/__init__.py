"""LSTM and GRU models from the lecture, made correct, with their inputs and FLOP counts."""

from rnnmodels.data import PAD_ID, lecture_batch, padding_fraction, synthetic_batch
from rnnmodels.flops import forward_flops
from rnnmodels.models import MODEL_CLASSES, GRUModel, LSTMModel, RecurrentModel

__all__ = [
    "MODEL_CLASSES",
    "PAD_ID",
    "GRUModel",
    "LSTMModel",
    "RecurrentModel",
    "forward_flops",
    "lecture_batch",
    "padding_fraction",
    "synthetic_batch",
]
