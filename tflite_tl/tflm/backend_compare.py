"""Runs one model on both TFLM backends (the tflite_micro wheel and the
native runner built from $TFLM_ROOT) and compares outputs, variables and
measured arenas."""
import dataclasses
from typing import List, Sequence

import numpy as np

from tflite_tl.tflm.arena import ArenaReport
from tflite_tl.tflm.runner import run_model


@dataclasses.dataclass(frozen=True)
class BackendComparison:
  """Wheel vs native on one model: are results bit-identical, and arenas."""
  name: str
  invokes: int
  arrays: int  # outputs (per invoke) and variables compared
  bit_identical: bool
  max_abs_diff: float
  wheel: ArenaReport
  native: ArenaReport


def compare_backends(name: str, tflite_bytes: bytes,
                     steps_inputs: Sequence[Sequence[np.ndarray]]
                     ) -> BackendComparison:
  """Invokes the model once per step on each backend (state kept between
  steps, variables read back after the last) and measures both arenas."""
  wheel = run_model(tflite_bytes, steps_inputs, measure_arena=True,
                    read_variables=True, backend="wheel")
  native = run_model(tflite_bytes, steps_inputs, measure_arena=True,
                     read_variables=True, backend="native")
  pairs = [(w, n) for ws, ns in zip(wheel.outputs, native.outputs)
           for w, n in zip(ws, ns)]
  if sorted(wheel.variables) != sorted(native.variables):
    raise ValueError(f"{name}: the backends read back different variables: "
                     f"{sorted(wheel.variables)} vs {sorted(native.variables)}")
  pairs += [(wheel.variables[k], native.variables[k]) for k in wheel.variables]
  identical = all(w.dtype == n.dtype and w.shape == n.shape and
                  np.array_equal(w, n) for w, n in pairs)
  diff = max((float(np.max(np.abs(w.astype(np.float64) - n.astype(np.float64))))
              for w, n in pairs if w.size and w.shape == n.shape), default=0.0)
  return BackendComparison(name, len(steps_inputs), len(pairs), identical, diff,
                           wheel.arena, native.arena)


def to_markdown(rows: List[BackendComparison]) -> str:
  lines = ["| model | invokes | arrays compared | bit-identical | wheel arena "
           "total / head / tail B | native arena total / head / tail B | "
           "native - wheel B |",
           "|---|---:|---:|---|---|---|---:|"]
  for r in rows:
    lines.append(
        f"| {r.name} | {r.invokes} | {r.arrays} | "
        f"{'yes' if r.bit_identical else f'no (max diff {r.max_abs_diff:.3g})'}"
        f" | {r.wheel.total} / {r.wheel.head} / {r.wheel.tail} | "
        f"{r.native.total} / {r.native.head} / {r.native.tail} | "
        f"{r.native.total - r.wheel.total:+d} |")
  return "\n".join(lines) + "\n"
