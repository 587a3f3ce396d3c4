"""Records and report of the analytic training-memory model.

Every byte of the modelled figure comes from an explicit record: a weight
(:class:`ParamRecord`) or an activation tensor (:class:`TensorRecord`) with
the layer, the tensor, its per-sample shape, its bit width and why it is held.
These are "modelled (analytic)" figures, not measurements; they are kept
per tensor so they can be compared with the arenas TFLM measures.
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

MB = 1_000_000
"""Bytes per MB in all reports: decimal megabytes, the unit of TinyTL's
profiler (``memory_cost / 1e6``) and so of its Table 2."""

# Why an activation is held.
SAVED = "saved_for_backward"    # kept from the forward pass for the backward
WORKING = "working"             # input/output buffers of the running layer
LIVE = "live"                   # computed earlier, read by a later layer


@dataclasses.dataclass(frozen=True)
class TensorRecord:
  """One activation tensor held at some point of the training step.

  ``bytes`` is per sample; batch them with :attr:`MemoryReport.batch_size`.
  """
  layer: str
  tensor: str
  shape: Tuple[int, ...]
  bits: int
  bytes: float
  role: str
  why: str


@dataclasses.dataclass(frozen=True)
class ParamRecord:
  """One weight of the model, stored at the trainable or frozen bit width."""
  layer: str
  weight: str
  shape: Tuple[int, ...]
  trainable: bool
  bits: int
  bytes: float


@dataclasses.dataclass(frozen=True)
class LayerMemory:
  """Per-layer view, in forward order (activation bytes per sample).

  ``held_bytes`` is everything held while the layer runs: its working
  buffers, all activations saved so far by earlier layers, and live tensors
  other layers still need. The model's activation peak is the largest
  ``held_bytes``.
  """
  layer: str
  kind: str
  saved_bytes: float
  working_bytes: float
  saved_before_bytes: float
  live_bytes: float
  held_bytes: float
  trainable_param_bytes: float
  frozen_param_bytes: float
  records: Tuple[TensorRecord, ...]


@dataclasses.dataclass(frozen=True)
class MemoryReport:
  """Modelled (analytic) training memory of one model, TinyTL-style.

  ``total_bytes = peak_activation_bytes_per_sample * batch_size +
  param_bytes``, the accounting of TinyTL (Cai et al., NeurIPS 2020).
  MB figures are decimal (10**6 bytes), as in the paper.
  """
  model: str
  batch_size: int
  activation_bits: int
  trainable_param_bits: int
  frozen_param_bits: int
  trainable_param_bytes: float
  frozen_param_bytes: float
  peak_activation_bytes_per_sample: float
  peak_layer: str
  saved_activation_bytes_per_sample: float
  breakdown: Tuple[LayerMemory, ...]
  params: Tuple[ParamRecord, ...]

  @property
  def param_bytes(self) -> float:
    return self.trainable_param_bytes + self.frozen_param_bytes

  @property
  def activation_bytes(self) -> float:
    return self.peak_activation_bytes_per_sample * self.batch_size

  @property
  def total_bytes(self) -> float:
    return self.activation_bytes + self.param_bytes

  @property
  def total_mb(self) -> float:
    return self.total_bytes / MB

  @property
  def records(self) -> List[TensorRecord]:
    """All activation records, in forward order."""
    return [r for layer in self.breakdown for r in layer.records]

  def layer(self, name: str) -> LayerMemory:
    for entry in self.breakdown:
      if entry.layer == name:
        return entry
    raise KeyError(f"no layer named '{name}' in the memory report of "
                   f"'{self.model}'.")

  def summary(self) -> Dict[str, object]:
    """Headline figures (MB) as a JSON-friendly dict."""
    return {
        "model": self.model,
        "figures": "modelled (analytic)",
        "batch_size": self.batch_size,
        "total_mb": round(self.total_mb, 3),
        "activation_mb": round(self.activation_bytes / MB, 3),
        "param_mb": round(self.param_bytes / MB, 3),
        "trainable_param_mb": round(self.trainable_param_bytes / MB, 3),
        "frozen_param_mb": round(self.frozen_param_bytes / MB, 3),
        "peak_activation_mb_per_sample": round(
            self.peak_activation_bytes_per_sample / MB, 3),
        "peak_layer": self.peak_layer,
        "saved_activation_mb_per_sample": round(
            self.saved_activation_bytes_per_sample / MB, 3),
    }

  def to_dict(self) -> Dict[str, object]:
    """Summary plus the per-layer and per-tensor breakdown."""
    result = self.summary()
    result["layers"] = [
        {"layer": l.layer, "kind": l.kind, "saved_bytes": l.saved_bytes,
         "working_bytes": l.working_bytes,
         "saved_before_bytes": l.saved_before_bytes,
         "live_bytes": l.live_bytes, "held_bytes": l.held_bytes,
         "trainable_param_bytes": l.trainable_param_bytes,
         "frozen_param_bytes": l.frozen_param_bytes,
         "tensors": [dataclasses.asdict(r) for r in l.records]}
        for l in self.breakdown]
    return result

  def format_table(self, max_rows: Optional[int] = None) -> str:
    """A readable per-layer table (kB = 1000 bytes, per sample)."""
    lines = [
        f"Training memory of '{self.model}', modelled (analytic), batch "
        f"{self.batch_size}: {self.total_mb:.2f} MB = peak activations "
        f"{self.peak_activation_bytes_per_sample / MB:.3f} MB/sample x "
        f"{self.batch_size} (at '{self.peak_layer}') + params "
        f"{self.param_bytes / MB:.3f} MB (trainable "
        f"{self.trainable_param_bits}-bit {self.trainable_param_bytes / MB:.3f}"
        f" MB, frozen {self.frozen_param_bits}-bit "
        f"{self.frozen_param_bytes / MB:.3f} MB)",
        f"{'layer':40s} {'kind':12s} {'saved kB':>10s} {'working kB':>10s} "
        f"{'held kB':>10s}"]
    rows = self.breakdown if max_rows is None else self.breakdown[:max_rows]
    for l in rows:
      lines.append(f"{l.layer[:40]:40s} {l.kind[:12]:12s} "
                   f"{l.saved_bytes / 1000:10.2f} "
                   f"{l.working_bytes / 1000:10.2f} "
                   f"{l.held_bytes / 1000:10.2f}")
    return "\n".join(lines)
