"""What bounds a case: its memory traffic, and where it sits under the machine's roofs.

A cache-aware roofline (Ilic, Pratas and Sousa, IEEE CAL 2014): one compute roof, and one
bandwidth roof per memory level, all measured (``bench.measure.roofs``). A case's
attainable rate is ``min(compute roof, intensity × bandwidth of the level its weights
live in)``; a case whose fixed per-step cost (dispatch, launches, Python in the cell
loop: the *overhead floor*, measured on a tiny case) would alone take longer than the
roof allows is *overhead*-bound.

The traffic model, per step (one forward call over one batch, inference; forward and
backward, training), for each layer and direction of an LSTM (G = 4 gates) or GRU (G = 3):

* the recurrent weights, G·H·H values, read at every one of the T time steps: an RNN
  multiplies the whole matrix by a batch of B state vectors per step, so at small B
  this term dominates;
* the input weights, G·H·I values, read once (one GEMM over all positions), and biases;
* the activations: the layer's input and output once, the precomputed gates written
  once and read once, and the states read and written at each step;
* for the first layer, the embedding rows gathered.

Activations count the positions computed: every position for padded and exact
batches, the valid ones for packed batches. Training is counted as three passes
(forward, gradients of the inputs, gradients of the weights), as its FLOPs count the
backward as twice the forward. The weights are assumed to stay in the smallest memory
level that holds one layer-direction's recurrent weights and a step's activations
(private levels count once per thread: the threads split the weights). The model
ignores the caches' reuse of activations between steps and the prefetchers; it is an
estimate, and a case beating its roof is said so in its note rather than hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.core.cases import Case

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GATES = {"lstm": 4, "gru": 3}
TRAINING_PASSES = 3  # forward, gradients of the inputs, gradients of the weights
BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class Traffic:
    """A case's modelled memory traffic per step."""

    bytes_per_step: float
    working_set_bytes: float  # one layer-direction's recurrent weights and a step's activations


def traffic(case: Case, valid_tokens: int) -> Traffic | None:
    """The traffic model (module docstring) of a suite model's case; None for a user's model,
    whose structure the suite does not know."""
    if case.user_model or case.model not in GATES:
        return None
    s = DTYPE_BYTES[case.dtype]
    g, h, b, t = GATES[case.model], case.hidden_size, case.batch_size, case.seq_len
    dirs = 2 if case.bidirectional else 1
    positions = valid_tokens if case.varlen == "packed" else b * t
    state_values = 2 if case.model == "lstm" else 1  # h and c, or h
    values = positions * case.embedding_dim  # the embedding rows gathered
    for layer in range(case.num_layers):
        inputs = case.embedding_dim if layer == 0 else dirs * h
        per_direction = (
            t * g * h * h  # recurrent weights, every step
            + g * h * inputs  # input weights, once
            + 2 * g * h  # biases
            + positions * (inputs + h)  # the layer's input read, its output written
            + 2 * positions * g * h  # the input projections written, then read step by step
            + 2 * t * b * h * state_values  # states read and written each step
        )
        values += dirs * per_direction
    passes = TRAINING_PASSES if case.mode == "training" else 1
    working_set = (g * h * h + b * (g * h + 2 * h * state_values)) * s
    return Traffic(bytes_per_step=passes * values * s, working_set_bytes=working_set)


def overhead_steps(case: Case) -> int:
    """Cell steps a case runs: each time step of each layer and direction (the floor's unit)."""
    return case.seq_len * case.num_layers * (2 if case.bidirectional else 1)


@dataclass(frozen=True)
class Level:
    """One memory level's bandwidth roof, as measured at a thread count."""

    name: str  # L1, L2, L3, DRAM; on a GPU L2, HBM
    capacity_bytes: float  # what the threads together can hold in it (inf for DRAM/HBM)
    gb_per_s: float


@dataclass(frozen=True)
class Roofs:
    """The roofs a case is placed under: its device's, at its dtype, threads and TF32."""

    compute_gflop_per_s: float
    engine: str  # what reached the compute roof (e.g. "torch.mm 2048", "nn.LSTM h1024")
    levels: tuple[Level, ...]  # smallest first
    floor_ms_per_step: float | None = None  # the fixed cost of one cell step, if measured

    def level_for(self, working_set_bytes: float) -> Level | None:
        """The smallest level that holds the working set (the last one holds anything)."""
        for level in self.levels:
            if working_set_bytes <= level.capacity_bytes:
                return level
        return self.levels[-1] if self.levels else None


@dataclass(frozen=True)
class Placement:
    """Where a measured case sits under its roofs."""

    traffic_mb: float
    intensity_flop_per_byte: float
    attained_gb_per_s: float
    weights_level: str
    level_gb_per_s: float
    roof_gflop_per_s: float
    roof_fraction: float
    floor_ms: float | None
    bound: str
    above: tuple[str, ...]  # the roofs the case beat (compute, and/or the level's bandwidth)


def place(case: Case, valid_tokens: int, gflop: float, median_ms: float, roofs: Roofs) -> Placement | None:
    """The case under ``roofs``; None where the model or the roofs cannot say (a user's model,
    no FLOP count, no bandwidth measured)."""
    flow = traffic(case, valid_tokens)
    level = roofs.level_for(flow.working_set_bytes) if flow else None
    if flow is None or level is None or not gflop or not median_ms or median_ms <= 0:
        return None
    seconds = median_ms / 1e3
    flops = gflop * 1e9
    intensity = flops / flow.bytes_per_step
    memory_roof = intensity * level.gb_per_s  # GFLOP/s: FLOP/B × GB/s
    roof = min(roofs.compute_gflop_per_s, memory_roof)
    attained = flops / seconds / 1e9
    attained_gb = flow.bytes_per_step / seconds / 1e9
    floor_ms = None
    if roofs.floor_ms_per_step is not None:
        floor_ms = roofs.floor_ms_per_step * overhead_steps(case)
    roof_ms = gflop / roof * 1e3
    if floor_ms is not None and floor_ms > roof_ms:
        bound = "overhead"  # the fixed per-step cost alone takes longer than the roofs allow
    else:
        bound = "memory" if memory_roof < roofs.compute_gflop_per_s else "compute"
    above = tuple(
        name
        for name, beaten in (
            (f"compute roof ({roofs.engine})", attained > roofs.compute_gflop_per_s),
            (f"{level.name} bandwidth", attained_gb > level.gb_per_s),
        )
        if beaten
    )
    return Placement(
        traffic_mb=flow.bytes_per_step / 1e6,
        intensity_flop_per_byte=intensity,
        attained_gb_per_s=attained_gb,
        weights_level=level.name,
        level_gb_per_s=level.gb_per_s,
        roof_gflop_per_s=roof,
        roof_fraction=attained / roof,
        floor_ms=floor_ms,
        bound=bound,
        above=above,
    )


def ridge_intensity(compute_gflop_per_s: float, level: Level) -> float:
    """The intensity (FLOP/B) from which a case whose weights live in ``level`` is compute-bound."""
    return compute_gflop_per_s / level.gb_per_s


def levels_from_caches(caches: Sequence[tuple[str, float, bool]], threads: int) -> list[tuple[str, float]]:
    """(level name, capacity in bytes the threads hold together) from (name, size, private):
    a private cache counts once per thread."""
    return [(name, size * threads if private else size) for name, size, private in caches]
