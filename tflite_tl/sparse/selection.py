"""What a sparse update trains, as data: layers, channels, bytes, MACs.

A :class:`Selection` is produced by :func:`tflite_tl.sparse.select`
(TinyTrain's task-adaptive criterion) or :func:`tflite_tl.sparse.
sparse_update_scheme` (the static scheme of MIT's sparse update), consumed by
the rewrite (``apply_method(model, "tinytrain", selection=...)``) and printed
into export reports. It is plain data: ``to_dict()`` is JSON-friendly and
``from_dict(to_dict())`` gives an equal selection, so a selection made once
(e.g. on the host, on the user's samples) can be stored and applied again.

All byte and MAC figures are **modelled (analytic)** (:mod:`tflite_tl.
sparse.cost`), per training step at the selection's batch size.
"""
import dataclasses
from typing import Dict, Optional, Tuple

FORMAT = "tflite-tl-selection/1"
#: Parts of ``Selection.memory_breakdown``, in this order.
MEMORY_PARTS = ("activations_beyond_inference", "trained_parameters",
                "parameter_gradients", "optimizer_state")
#: Parts of ``Selection.saved_breakdown``, in this order.
SAVED_PARTS = ("stored_activations", "masks")


def _by_name(mapping):
  return tuple(sorted(mapping.items()))


@dataclasses.dataclass(frozen=True)
class LayerChoice:
  """One layer whose kernel trains on some channels.

  Attributes:
    layer: the layer's name in the prepared model (BatchNorm folded, new
      head).
    kind: ``"conv"`` or ``"depthwise"``.
    channel_axis: ``"input"`` or ``"output"`` (conv), ``"channels"``
      (depthwise).
    channels: the trained channels, sorted.
    total_channels: channels on that axis.
    score: the layer's multi-objective score (None for static schemes).
    potential: the layer's Fisher potential P (None when not computed).
    stored_bytes: activation bytes stored for its kernel gradient.
    param_bytes: bytes of its trained kernel slices (and bias, if trained).
    weight_grad_macs: MACs of its kernel gradient per step.
  """
  layer: str
  kind: str
  channel_axis: str
  channels: Tuple[int, ...]
  total_channels: int
  score: Optional[float] = None
  potential: Optional[float] = None
  stored_bytes: int = 0
  param_bytes: int = 0
  weight_grad_macs: int = 0

  @property
  def fraction(self) -> float:
    return len(self.channels) / self.total_channels

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["channels"] = list(self.channels)
    return d

  @classmethod
  def from_dict(cls, d: dict) -> "LayerChoice":
    d = dict(d)
    d["channels"] = tuple(int(c) for c in d["channels"])
    return cls(**d)


@dataclasses.dataclass(frozen=True)
class Selection:
  """A sparse-update scheme (see the module docstring).

  Attributes:
    method: ``"tinytrain"`` or ``"sparse_update"``.
    criterion: how channels were ranked: ``"fisher"``, ``"l2"``, ``"random"``.
    layers: the layers whose kernels train, in forward order.
    bias_layers: layers whose bias trains (sorted names).
    head: the classifier, which always trains fully.
    batch_size, momentum: the training step the figures are for.
    seed: seed of the random choices (``criterion="random"``).
    memory_budget, compute_budget: the budgets selected under (bytes,
      backward MACs per step; None = unbounded).
    parameter_budget: the bound on trained parameters and optimizer state,
      what a board persists (bytes; None = unbounded: an export sets it
      when the board's flash cannot hold the parameter slots).
    modelled_bytes: training state beyond inference: the activation peak
      beyond inference's, trained parameters, their gradients and optimizer
      state (:mod:`tflite_tl.sparse.cost`).
    memory_breakdown: ``modelled_bytes`` by part.
    saved_breakdown: what the backward pass reads (kept input channels and
      the head's input; ReLU masks), the memory model's accounting.
    backward_macs: MACs of the backward pass per step (input and weight
      gradients of convolutions and matrix products).
    scores: multi-objective score of every candidate layer (sorted by
      name, as the other per-layer tables).
    layer_potentials: Fisher potential P of every candidate layer.
    channel_potentials: per-channel Fisher potentials of the chosen layers
      (channel index order), when computed.
  """
  method: str
  criterion: str
  layers: Tuple[LayerChoice, ...]
  bias_layers: Tuple[str, ...]
  head: str
  batch_size: int
  momentum: float = 0.0
  seed: int = 0
  memory_budget: Optional[int] = None
  compute_budget: Optional[int] = None
  parameter_budget: Optional[int] = None
  modelled_bytes: int = 0
  memory_breakdown: Tuple[Tuple[str, int], ...] = ()
  saved_breakdown: Tuple[Tuple[str, int], ...] = ()
  backward_macs: int = 0
  scores: Tuple[Tuple[str, float], ...] = ()
  layer_potentials: Tuple[Tuple[str, float], ...] = ()
  channel_potentials: Tuple[Tuple[str, Tuple[float, ...]], ...] = ()

  @property
  def layer_names(self) -> Tuple[str, ...]:
    return tuple(c.layer for c in self.layers)

  def choice(self, layer: str) -> LayerChoice:
    for c in self.layers:
      if c.layer == layer:
        return c
    raise KeyError(f"layer '{layer}' is not in the selection (layers: "
                   f"{', '.join(self.layer_names) or 'none'}).")

  @property
  def persisted_bytes(self) -> int:
    """Trained parameters and optimizer state (modelled): what a board
    saves to keep what it learnt."""
    parts = dict(self.memory_breakdown)
    return parts.get("trained_parameters", 0) + parts.get("optimizer_state", 0)

  @property
  def trained_channels(self) -> int:
    return sum(len(c.channels) for c in self.layers)

  def to_dict(self) -> dict:
    """JSON-friendly dict; ``Selection.from_dict`` inverts it."""
    return {
        "format": FORMAT, "method": self.method, "criterion": self.criterion,
        "layers": [c.to_dict() for c in self.layers],
        "bias_layers": list(self.bias_layers), "head": self.head,
        "batch_size": self.batch_size, "momentum": self.momentum,
        "seed": self.seed, "memory_budget": self.memory_budget,
        "compute_budget": self.compute_budget,
        "parameter_budget": self.parameter_budget,
        "modelled_bytes": self.modelled_bytes,
        "memory_breakdown": dict(self.memory_breakdown),
        "saved_breakdown": dict(self.saved_breakdown),
        "backward_macs": self.backward_macs,
        "scores": dict(self.scores),
        "layer_potentials": dict(self.layer_potentials),
        "channel_potentials": {k: list(v) for k, v in
                               self.channel_potentials},
        "figures": "modelled (analytic)",
    }

  @classmethod
  def from_dict(cls, d: dict) -> "Selection":
    if d.get("format") != FORMAT:
      raise ValueError(f"Not a selection: format {d.get('format')!r}, "
                       f"expected {FORMAT!r}.")
    return cls(
        method=d["method"], criterion=d["criterion"],
        layers=tuple(LayerChoice.from_dict(c) for c in d["layers"]),
        bias_layers=tuple(d["bias_layers"]), head=d["head"],
        batch_size=int(d["batch_size"]), momentum=float(d["momentum"]),
        seed=int(d["seed"]), memory_budget=d["memory_budget"],
        compute_budget=d["compute_budget"],
        parameter_budget=d.get("parameter_budget"),
        modelled_bytes=int(d["modelled_bytes"]),
        memory_breakdown=tuple((k, int(d["memory_breakdown"][k]))
                               for k in MEMORY_PARTS
                               if k in d["memory_breakdown"]),
        saved_breakdown=tuple((k, int(d["saved_breakdown"][k]))
                              for k in SAVED_PARTS
                              if k in d.get("saved_breakdown", {})),
        backward_macs=int(d["backward_macs"]),
        scores=_by_name({k: float(v) for k, v in d["scores"].items()}),
        layer_potentials=_by_name({k: float(v) for k, v in
                                   d["layer_potentials"].items()}),
        channel_potentials=_by_name({k: tuple(float(x) for x in v) for k, v in
                                     d["channel_potentials"].items()}))

  def summary(self) -> str:
    """One line: layers, channels, bytes and MACs."""
    parts = ", ".join(f"{c.layer} {len(c.channels)}/{c.total_channels}"
                      for c in self.layers)
    return (f"{self.method} ({self.criterion}): {len(self.layers)} layers "
            f"[{parts}], {len(self.bias_layers)} biases + head; "
            f"{self.modelled_bytes:,} B training state, "
            f"{self.backward_macs:,} backward MACs per step (modelled, "
            f"batch {self.batch_size})")

  def format_markdown(self) -> str:
    """The selection as a markdown table (for REPORT.md)."""
    def budget(value, unit):
      return "unbounded" if value is None else f"{value:,} {unit}"
    lines = [
        f"Sparse update `{self.method}`, channels by `{self.criterion}`, "
        f"batch {self.batch_size}; memory budget "
        f"{budget(self.memory_budget, 'B')}, compute budget "
        f"{budget(self.compute_budget, 'MACs')}"
        + ("" if self.parameter_budget is None else
           f", parameter budget {self.parameter_budget:,} B (trained "
           "parameters and optimizer state)")
        + ". Figures modelled (analytic).",
        "",
        "| layer | kind | axis | channels | score | potential | stored (B) "
        "| params (B) | weight-grad MACs |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in self.layers:
      score = "–" if c.score is None else f"{c.score:.3g}"
      pot = "–" if c.potential is None else f"{c.potential:.3g}"
      lines.append(
          f"| {c.layer} | {c.kind} | {c.channel_axis} | "
          f"{len(c.channels)}/{c.total_channels} | {score} | {pot} | "
          f"{c.stored_bytes:,} | {c.param_bytes:,} | "
          f"{c.weight_grad_macs:,} |")
    parts = ", ".join(f"{k.replace('_', ' ')} {v:,} B"
                      for k, v in self.memory_breakdown)
    saved = ", ".join(f"{k.replace('_', ' ')} {v:,} B"
                      for k, v in self.saved_breakdown)
    lines += ["", f"Training state beyond inference: **{self.modelled_bytes:,}"
              f" B** ({parts}); kept for the backward pass: {saved}; "
              f"backward pass {self.backward_macs:,} MACs per step. Biases "
              f"trained: {len(self.bias_layers)} layers; head `{self.head}` "
              "trains fully."]
    return "\n".join(lines)
