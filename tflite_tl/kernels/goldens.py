"""Text format of the kernel golden files in ``tflm_kernels/testdata/``.

One file holds several cases of one kernel. It is plain text so that the C++
tests can read it without a library and so that diffs stay reviewable::

  # comment lines
  case <name>
  param <key> <int or float>
  tensor <name> <f32|i32|i8|u8> <rank> <dim0> ... <dimN-1>
  <values, 8 per line>
  end

Floats are written with 9 significant digits, which round-trips float32
exactly, so a file read back gives the same bits that were written.
"""
import dataclasses
import pathlib
from typing import Dict, List, Union

import numpy as np

_DTYPES = {
    "f32": np.float32,
    "i32": np.int32,
    "i8": np.int8,
    "u8": np.uint8,
}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_PER_LINE = 8


@dataclasses.dataclass
class GoldenCase:
  """One kernel invocation: scalar parameters and named tensors."""
  name: str
  params: Dict[str, Union[int, float]] = dataclasses.field(default_factory=dict)
  tensors: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _format_value(value) -> str:
  if isinstance(value, (np.floating, float)):
    return "%.9g" % float(value)
  return str(int(value))


def format_cases(cases: List[GoldenCase], header: str) -> str:
  """Serialises cases; `header` becomes leading '#' comment lines."""
  lines = ["# " + h if h else "#" for h in header.splitlines()]
  for case in cases:
    lines.append(f"case {case.name}")
    for key, value in case.params.items():
      if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"param {key!r} of case {case.name!r}: use 0/1, not bool")
      lines.append(f"param {key} {_format_value(value)}")
    for tname, array in case.tensors.items():
      array = np.asarray(array)
      if array.dtype not in _CODES:
        raise TypeError(
            f"tensor {tname!r} of case {case.name!r} has dtype {array.dtype}; "
            f"supported: {sorted(str(np.dtype(d)) for d in _DTYPES.values())}")
      dims = " ".join(str(d) for d in array.shape)
      lines.append(f"tensor {tname} {_CODES[array.dtype]} {array.ndim} {dims}".rstrip())
      flat = array.reshape(-1)
      for start in range(0, flat.size, _PER_LINE):
        lines.append(" ".join(_format_value(v) for v in flat[start:start + _PER_LINE]))
    lines.append("end")
  return "\n".join(lines) + "\n"


def parse_cases(text: str, source: str = "<golden>") -> List[GoldenCase]:
  """Parses the output of `format_cases`."""
  tokens = []
  for line in text.splitlines():
    if line.startswith("#"):
      continue
    tokens.extend(line.split())
  cases, pos, current = [], 0, None

  def take():
    nonlocal pos
    if pos >= len(tokens):
      raise ValueError(f"{source}: unexpected end of file")
    pos += 1
    return tokens[pos - 1]

  while pos < len(tokens):
    word = take()
    if word == "case":
      current = GoldenCase(take())
    elif current is None:
      raise ValueError(f"{source}: expected 'case', got {word!r}")
    elif word == "param":
      key, raw = take(), take()
      current.params[key] = float(raw) if any(c in raw for c in ".eEn") else int(raw)
    elif word == "tensor":
      tname, code, rank = take(), take(), int(take())
      if code not in _DTYPES:
        raise ValueError(f"{source}: tensor {tname!r} has unknown dtype {code!r}")
      shape = tuple(int(take()) for _ in range(rank))
      count = int(np.prod(shape, dtype=np.int64))
      values = [take() for _ in range(count)]
      current.tensors[tname] = np.array(
          [float(v) for v in values] if code == "f32" else [int(v) for v in values],
          dtype=_DTYPES[code]).reshape(shape)
    elif word == "end":
      cases.append(current)
      current = None
    else:
      raise ValueError(f"{source}: unknown keyword {word!r}")
  if current is not None:
    raise ValueError(f"{source}: case {current.name!r} has no 'end'")
  return cases


def read_cases(path: Union[str, pathlib.Path]) -> List[GoldenCase]:
  path = pathlib.Path(path)
  return parse_cases(path.read_text(), str(path))
