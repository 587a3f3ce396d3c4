"""Whether bytes are a whole, well-formed .tflite before anything runs them.

The flatbuffer accessors read lazily: a truncated or corrupted file fails
deep inside a later call with ``struct.error`` or ``UnicodeDecodeError``, and
the TFLM interpreter given such bytes may read out of bounds and die. One
walk over every table the interpreter will touch (subgraphs, tensors,
operators, opcodes, buffer extents) turns all of that into one
:class:`TfliteFileError` naming what is wrong, before the model is used.
"""
import struct

from tflite_tl.flatbuffer import reader

_FIX = ("pass the bytes of a .tflite written by tflite-tl or the TFLite "
        "converter (re-export it if the file was cut short or edited)")
# What a broken flatbuffer raises from its accessors.
_BROKEN = (struct.error, UnicodeDecodeError, IndexError, ValueError,
           TypeError, AttributeError, OverflowError, KeyError)


class TfliteFileError(ValueError):
  """Bytes given as a model are not a usable .tflite flatbuffer."""


def _check_tensor_index(index, num_tensors, where):
  if not -1 <= index < num_tensors:
    raise ValueError(f"{where} refers to tensor {index} of {num_tensors}")


def _walk(data: bytes) -> None:
  model = reader.root(data)
  num_codes = model.OperatorCodesLength()
  num_buffers = model.BuffersLength()
  for b in range(num_buffers):
    buf = model.Buffers(b)
    end = buf.Offset() + buf.Size() if buf.Offset() else 0
    if end > len(data):
      raise ValueError(f"buffer {b} ends at byte {end} of {len(data)}")
    buf.DataLength()
  if model.SubgraphsLength() < 1:
    raise ValueError("it has no subgraph")
  for s in range(model.SubgraphsLength()):
    sg = model.Subgraphs(s)
    num_tensors = sg.TensorsLength()
    for t in range(num_tensors):
      tensor = sg.Tensors(t)
      (tensor.Name() or b"").decode("utf-8")
      if tensor.ShapeLength():
        tensor.ShapeAsNumpy()
      if tensor.Type() not in reader.TYPE_NAMES:
        raise ValueError(f"tensor {t} has unknown type {tensor.Type()}")
      if not 0 <= tensor.Buffer() < max(num_buffers, 1):
        raise ValueError(f"tensor {t} refers to buffer {tensor.Buffer()} of "
                         f"{num_buffers}")
    for i in range(sg.InputsLength()):
      _check_tensor_index(sg.Inputs(i), num_tensors, f"subgraph {s} input")
    for i in range(sg.OutputsLength()):
      _check_tensor_index(sg.Outputs(i), num_tensors, f"subgraph {s} output")
    for o in range(sg.OperatorsLength()):
      op = sg.Operators(o)
      if not 0 <= op.OpcodeIndex() < num_codes:
        raise ValueError(f"operator {o} has opcode {op.OpcodeIndex()} of "
                         f"{num_codes}")
      for i in range(op.InputsLength()):
        _check_tensor_index(op.Inputs(i), num_tensors, f"operator {o}")
      for i in range(op.OutputsLength()):
        _check_tensor_index(op.Outputs(i), num_tensors, f"operator {o}")
  for c in range(num_codes):
    code = model.OperatorCodes(c)
    code.BuiltinCode()
    code.CustomCode()


def check_intact(data, what: str = "model") -> None:
  """Raises :class:`TfliteFileError` (one line naming ``what`` and the fix)
  unless ``data`` is the bytes of a complete, well-formed .tflite."""
  if isinstance(data, (str, bytearray, memoryview)) or not isinstance(
      data, bytes):
    if isinstance(data, (bytearray, memoryview)):
      return check_intact(bytes(data), what)
    hint = (" (a path: read the file first, open(path, 'rb').read())"
            if isinstance(data, str) else "")
    raise TfliteFileError(f"{what}: expected the bytes of a .tflite model, "
                          f"got {type(data).__name__}{hint}.")
  if len(data) < 8 or data[4:8] != reader.IDENTIFIER:
    head = data[:8]
    raise TfliteFileError(
        f"{what}: not a .tflite flatbuffer ({len(data)} bytes, no 'TFL3' "
        f"identifier at byte 4; starts with {head!r}); {_FIX}.")
  try:
    _walk(data)
  except _BROKEN as e:
    raise TfliteFileError(
        f"{what}: a truncated or corrupt .tflite ({len(data)} bytes; {e}); "
        f"{_FIX}.") from None
