"""Which activations a .tflite keeps alive at once: the arena head, explained.

TFLM's memory planner lays out the non-persistent tensors of a subgraph (the
"head" of the arena) so that two tensors share bytes only when their
lifetimes do not overlap. A tensor's lifetime runs from the operator that
writes it to the last operator that reads it; the subgraph's inputs live from
the first operator and its outputs to the last, as TFLM's
``AllocationInfoBuilder`` has it. Constants (tensors with data) and variable
tensors are not planned: they sit in flash or in the persistent tail.

``live_profile`` replays those lifetimes and reports, per operator, the bytes
alive while it runs, each tensor rounded up to TFLM's 16-byte alignment, and
the tensors alive at the peak, largest first. The peak is a lower bound of
the planned head (modelled): the planner's greedy layout can leave gaps, and
kernels add scratch buffers that the flatbuffer does not show (TFLM's
recording allocator measures both). It answers "what to change" when a train
step's head is larger than expected: the tensor names say which layer keeps
what, and for how long.
"""
import dataclasses
from typing import List, Tuple

import numpy as np

from tflite_tl.flatbuffer import reader

#: TFLM aligns every planned buffer (``MicroArenaBufferAlignment()``).
ALIGNMENT = 16


@dataclasses.dataclass(frozen=True)
class LiveTensor:
  """One planned tensor: ``first``..``last`` are operator indices."""
  name: str
  shape: Tuple[int, ...]
  dtype: str
  bytes: int
  first: int
  last: int

  def to_dict(self) -> dict:
    return dataclasses.asdict(self) | {"shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class LiveProfile:
  """Bytes alive per operator of one subgraph (modelled)."""
  live_bytes: Tuple[int, ...]    # per operator, aligned
  peak_op: int                   # index of the first operator at the peak
  peak_op_name: str
  at_peak: Tuple[LiveTensor, ...]  # alive at peak_op, largest first

  @property
  def peak_bytes(self) -> int:
    return self.live_bytes[self.peak_op] if self.live_bytes else 0

  def to_dict(self, top: int = 10) -> dict:
    return {"peak_bytes": self.peak_bytes, "peak_op": self.peak_op,
            "peak_op_name": self.peak_op_name, "operators": len(
                self.live_bytes),
            "at_peak": [t.to_dict() for t in self.at_peak[:top]],
            "source": "modelled (tensor lifetimes from the flatbuffer; "
                      "kernel scratch buffers and planner gaps excluded)"}

  def describe(self, top: int = 5) -> str:
    """One line: the peak and its largest tensors."""
    if not self.live_bytes:
      return "no operators"
    largest = ", ".join(
        f"{t.name} {list(t.shape)} {t.dtype.lower()} {t.bytes:,} B "
        f"(ops {t.first}-{t.last})" for t in self.at_peak[:top])
    return (f"{self.peak_bytes:,} B alive at operator {self.peak_op} "
            f"({self.peak_op_name}) of {len(self.live_bytes)}, modelled; "
            f"largest: {largest}")


def _aligned(n: int) -> int:
  return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _is_planned(model, tensor) -> bool:
  """Not a constant, not a variable, not a resource handle."""
  if tensor.IsVariable():
    return False
  if reader.TYPE_NAMES.get(tensor.Type()) in (None, "RESOURCE", "VARIANT"):
    return False
  buffer = tensor.Buffer()
  if buffer > 0:
    data = model.Buffers(buffer)
    if data.DataLength() > 0 or data.Size() > 0:
      return False
  return True


def tensor_lifetimes(tflite_bytes: bytes, subgraph: int = 0
                     ) -> Tuple[List[LiveTensor], List[str]]:
  """The planned tensors of ``subgraph`` with their lifetimes, and the
  operator names in execution order."""
  model = reader.root(tflite_bytes)
  sg = model.Subgraphs(subgraph)
  ops = [name for name, _ in reader._ops(model, subgraph)]  # pylint: disable=protected-access
  last_op = max(len(ops) - 1, 0)
  first = {}
  last = {}
  for i in range(sg.InputsLength()):
    first[int(sg.Inputs(i))] = 0
  for index in range(sg.OperatorsLength()):
    op = sg.Operators(index)
    for k in range(op.InputsLength()):
      t = int(op.Inputs(k))
      if t >= 0:
        last[t] = index
        first.setdefault(t, index)
    for k in range(op.OutputsLength()):
      t = int(op.Outputs(k))
      if t >= 0:
        first.setdefault(t, index)
        last.setdefault(t, index)
  for i in range(sg.OutputsLength()):
    last[int(sg.Outputs(i))] = last_op
  tensors = []
  for t in sorted(first):
    tensor = sg.Tensors(t)
    if not _is_planned(model, tensor):
      continue
    info = reader._tensor(sg, t)  # pylint: disable=protected-access
    # _is_planned kept only types with a known size (a scalar's shape is ()).
    tensors.append(LiveTensor(info.name, info.shape, info.dtype,
                              _aligned(info.num_bytes), first[t],
                              max(last.get(t, first[t]), first[t])))
  return tensors, ops


def live_profile(tflite_bytes: bytes, subgraph: int = 0) -> LiveProfile:
  """Bytes alive at each operator of ``subgraph`` and the tensors at the
  peak (see the module docstring: modelled, a lower bound of the head)."""
  tensors, ops = tensor_lifetimes(tflite_bytes, subgraph)
  live = np.zeros(len(ops), np.int64)
  for t in tensors:
    live[t.first:t.last + 1] += t.bytes
  if not ops:
    return LiveProfile((), 0, "", ())
  peak = int(np.argmax(live))
  at_peak = sorted((t for t in tensors if t.first <= peak <= t.last),
                   key=lambda t: (-t.bytes, t.first, t.name))
  return LiveProfile(tuple(int(v) for v in live), peak, ops[peak],
                     tuple(at_peak))
