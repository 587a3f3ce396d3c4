"""Arena usage as reported by TFLM's RecordingMicroAllocator.

``Interpreter.print_allocations()`` prints lines such as::

  [RecordingMicroAllocator] Arena allocation total 161808 bytes
  [RecordingMicroAllocator] Arena allocation head 148112 bytes
  [RecordingMicroAllocator] Arena allocation tail 13696 bytes
  [RecordingMicroAllocator] 'TfLiteEvalTensor data' used 2424 bytes with ...

The head holds the planned (reused) tensor buffers, the tail persistent data:
interpreter structures, kernel state and the resource variables' buffers.
"""
import dataclasses
import re
from typing import Dict

SOURCE = "measured (TFLM recording allocator)"


def source_on(where: str) -> str:
  """``SOURCE`` naming where the allocator ran (e.g. "cortex-m4f in QEMU")."""
  return f"measured (TFLM recording allocator, {where})"

_TOTAL = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_PART = re.compile(r"'([^']+)' used (\d+) bytes")


@dataclasses.dataclass(frozen=True)
class ArenaReport:
  """Bytes of TFLM arena a model needs (measured, not modelled)."""
  total: int
  head: int
  tail: int
  breakdown: Dict[str, int]
  source: str = SOURCE

  def to_dict(self) -> dict:
    return {"total": self.total, "head": self.head, "tail": self.tail,
            "breakdown": dict(self.breakdown), "source": self.source}


def parse_allocations(text: str) -> ArenaReport:
  """Parses print_allocations() output; ValueError if it has no totals."""
  totals = {kind: int(value) for kind, value in _TOTAL.findall(text)}
  if set(totals) != {"total", "head", "tail"}:
    raise ValueError(
        "No RecordingMicroAllocator totals in the interpreter output:\n"
        + text[-2000:])
  breakdown = {name: int(value) for name, value in _PART.findall(text)}
  return ArenaReport(total=totals["total"], head=totals["head"],
                     tail=totals["tail"], breakdown=breakdown)
