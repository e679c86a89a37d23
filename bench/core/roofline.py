"""What bounds a case: its memory traffic, and where it sits under the machine's roofs.

A cache-aware roofline (Ilic, Pratas and Sousa, IEEE CAL 2014): one compute roof, and one
bandwidth roof per memory level, all measured (``bench.measure.peaks``, ``bench.measure.bandwidth``).
A case's memory time is its weight bytes at the bandwidth of the level its recurrent weights
fit in, plus its activation bytes at the level their buffers fit in; its roofline time is the
larger of that and its FLOPs at the compute roof. A case whose fixed cost (dispatch,
launches, packing, the Python of the cell loop: the *overhead floor*, measured on a tiny
copy, ``bench.measure.floors``) would alone take longer is *overhead*-bound.

The traffic model, per step (one forward call over one batch, inference; forward and
backward, training), for each layer and direction of an LSTM (G = 4 gates) or GRU (G = 3):

* weights: the recurrent weights, G·H·H values, read at every one of the T time steps
  (an RNN multiplies the whole matrix by a batch of B state vectors per step, so at small
  B this term dominates), the input weights, G·H·I values, read once (one GEMM over all
  positions), and the biases;
* activations: the layer's input and output once, the precomputed gates written once and
  read once, and the states read and written at each position; for the first layer, the
  embedding rows gathered.

Positions are every position of the batch for padded and exact batches (they are
computed), the valid ones for packed batches; the FLOPs placed on the roofline are the
ones executed, so a padded case's padding counts (``efficiency`` stays on useful FLOPs).
Training is counted as three passes (forward, gradients of the inputs, gradients of the
weights), as its FLOPs count the backward as twice the forward. The weights are taken to
stay in the smallest level that holds one layer-direction's recurrent weights and a step's
states, the activations in the smallest level that holds one layer-direction's buffers
(private levels count once per thread: the threads split the work). The model ignores
reuse between steps beyond that and the prefetchers; it is an estimate, and a case
beating its roof is said so in its note rather than hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.cases import Case

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GATES = {"lstm": 4, "gru": 3}
TRAINING_PASSES = 3  # forward, gradients of the inputs, gradients of the weights
BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class Traffic:
    """A case's modelled memory traffic per step."""

    weight_bytes: float
    activation_bytes: float
    working_set_bytes: float  # one layer-direction's recurrent weights and a step's states
    activation_set_bytes: float  # one layer-direction's activation buffers over all positions
    positions: int  # positions computed: every one when padded or exact, the valid ones when packed

    @property
    def bytes_per_step(self) -> float:
        return self.weight_bytes + self.activation_bytes


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
    weights = 0
    activations = positions * case.embedding_dim  # the embedding rows gathered
    largest_buffers = 0
    for layer in range(case.num_layers):
        inputs = case.embedding_dim if layer == 0 else dirs * h
        weights += dirs * (t * g * h * h + g * h * inputs + 2 * g * h)  # recurrent every step, input once, biases
        buffers = positions * (inputs + h + g * h)  # input, output, precomputed gates
        largest_buffers = max(largest_buffers, buffers)
        # input read, output written, gates written then read, states read and written at each position
        activations += dirs * (positions * (inputs + h) + 2 * positions * g * h + 2 * positions * h * state_values)
    passes = TRAINING_PASSES if case.mode == "training" else 1
    return Traffic(
        weight_bytes=passes * weights * s,
        activation_bytes=passes * activations * s,
        working_set_bytes=(g * h * h + 2 * b * h * state_values) * s,
        activation_set_bytes=largest_buffers * s,
        positions=positions,
    )


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
    floor_ms_per_step: float | None = None  # the fixed cost of one cell step, if measured ...
    floor_ms_per_call: float = 0.0  # ... and of one call whatever its steps (embedding, packing, dispatch)

    def level_for(self, working_set_bytes: float) -> Level | None:
        """The smallest level that holds the working set (the last one holds anything)."""
        for level in self.levels:
            if working_set_bytes <= level.capacity_bytes:
                return level
        return self.levels[-1] if self.levels else None


ABOVE_MARGIN = 1.05  # a case counts as above a roof beyond this: the roofs are best samples, and noisy


@dataclass(frozen=True)
class Placement:
    """Where a measured case sits under its roofs."""

    traffic_mb: float
    intensity_flop_per_byte: float
    attained_gb_per_s: float
    weights_level: str
    level_gb_per_s: float  # the bandwidth the case's bytes see: weights at their level, activations at theirs
    roof_gflop_per_s: float
    roof_fraction: float  # the binding bound's time (roofline or floor) over the measured time
    floor_ms: float | None
    bound: str
    above: tuple[str, ...]  # the roofs the case beat (compute, and/or its memory levels)


def place(case: Case, valid_tokens: int, gflop: float | None, median_ms: float, roofs: Roofs) -> Placement | None:
    """The case under ``roofs``; None where the model or the roofs cannot say (a user's model,
    no FLOP count, no valid token, no memory level measured)."""
    flow = traffic(case, valid_tokens)
    if flow is None or not roofs.levels or not gflop or not valid_tokens or not median_ms or median_ms <= 0:
        return None
    weights_level = roofs.level_for(flow.working_set_bytes)
    activations_level = roofs.level_for(flow.activation_set_bytes)
    assert weights_level is not None and activations_level is not None
    seconds = median_ms / 1e3
    flops = gflop * 1e9 * flow.positions / valid_tokens  # executed: padded positions are computed too
    memory_s = flow.weight_bytes / (weights_level.gb_per_s * 1e9) + flow.activation_bytes / (
        activations_level.gb_per_s * 1e9
    )
    bandwidth = flow.bytes_per_step / memory_s / 1e9  # GB/s the bytes see, both levels together
    intensity = flops / flow.bytes_per_step
    memory_roof = intensity * bandwidth  # GFLOP/s: FLOP/B × GB/s
    roof = min(roofs.compute_gflop_per_s, memory_roof)
    attained = flops / seconds / 1e9
    attained_gb = flow.bytes_per_step / seconds / 1e9
    roof_ms = flops / 1e9 / roof * 1e3
    floor_ms = None
    if roofs.floor_ms_per_step is not None:
        floor_ms = roofs.floor_ms_per_call + roofs.floor_ms_per_step * overhead_steps(case)
    if floor_ms is not None and floor_ms > roof_ms:
        bound = "overhead"  # the fixed cost alone takes longer than the roofs allow
    else:
        bound = "memory" if memory_roof < roofs.compute_gflop_per_s else "compute"
    above = tuple(
        name
        for name, beaten in (
            (f"compute roof ({roofs.engine})", attained > roofs.compute_gflop_per_s * ABOVE_MARGIN),
            (
                f"memory roof ({weights_level.name} weights, {activations_level.name} activations)",
                attained_gb > bandwidth * ABOVE_MARGIN,
            ),
        )
        if beaten
    )
    return Placement(
        traffic_mb=flow.bytes_per_step / 1e6,
        intensity_flop_per_byte=intensity,
        attained_gb_per_s=attained_gb,
        weights_level=weights_level.name,
        level_gb_per_s=bandwidth,
        roof_gflop_per_s=roof,
        roof_fraction=max(roof_ms, floor_ms or 0.0) / median_ms,
        floor_ms=floor_ms,
        bound=bound,
        above=above,
    )
