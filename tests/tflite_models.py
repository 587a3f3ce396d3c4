"""Builds small .tflite flatbuffers by hand, for tests: one or a few ops,
builtin or custom (TL_*), with constant, variable or planned tensors."""
import dataclasses
from typing import List, Optional, Sequence

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

_TYPES = {np.dtype(np.float32): schema.TensorType.FLOAT32,
          np.dtype(np.int32): schema.TensorType.INT32,
          np.dtype(np.int8): schema.TensorType.INT8,
          np.dtype(np.uint8): schema.TensorType.UINT8}


@dataclasses.dataclass
class Tensor:
  """A tensor of the model; ``data`` makes it constant (or, with
  ``variable``, the initial value of a variable tensor)."""
  name: str
  dtype: type
  shape: Sequence[int]
  data: Optional[np.ndarray] = None
  variable: bool = False
  scale: Optional[Sequence[float]] = None  # int8/uint8 quantization
  zero_point: Optional[Sequence[int]] = None
  quantized_dimension: int = 0


@dataclasses.dataclass
class Op:
  """A builtin (``builtin`` = schema.BuiltinOperator.X) or custom op."""
  inputs: Sequence[str]
  outputs: Sequence[str]
  builtin: int = schema.BuiltinOperator.CUSTOM
  custom: str = ""
  custom_options: bytes = b""
  options_type: int = 0  # schema.BuiltinOptions.X
  options: object = None  # e.g. schema.SoftmaxOptionsT()


def build_model(tensors: List[Tensor], ops: List[Op], inputs: Sequence[str],
                outputs: Sequence[str]) -> bytes:
  """The serialized model: one subgraph, tensors by name."""
  model = schema.ModelT()
  model.version = 3
  model.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
  sg = schema.SubGraphT()
  sg.tensors = []
  index = {}
  for t in tensors:
    tt = schema.TensorT()
    tt.name = t.name.encode()
    tt.type = _TYPES[np.dtype(t.dtype)]
    tt.shape = np.array(t.shape, np.int32)
    tt.isVariable = t.variable
    tt.buffer = 0
    if t.data is not None:
      buffer = schema.BufferT()
      data = np.ascontiguousarray(np.asarray(t.data, t.dtype))
      buffer.data = np.frombuffer(data.tobytes(), np.uint8)
      model.buffers.append(buffer)
      tt.buffer = len(model.buffers) - 1
    if t.scale is not None:
      q = schema.QuantizationParametersT()
      q.scale = np.array(t.scale, np.float32)
      q.zeroPoint = np.array(t.zero_point or [0] * len(t.scale), np.int64)
      q.quantizedDimension = t.quantized_dimension
      tt.quantization = q
    index[t.name] = len(sg.tensors)
    sg.tensors.append(tt)
  codes, sg.operators = [], []
  for op in ops:
    key = (op.builtin, op.custom)
    if key not in codes:
      codes.append(key)
    o = schema.OperatorT()
    o.opcodeIndex = codes.index(key)
    o.inputs = np.array([index[n] if n else -1 for n in op.inputs], np.int32)
    o.outputs = np.array([index[n] for n in op.outputs], np.int32)
    if op.custom_options:
      o.customOptions = np.frombuffer(op.custom_options, np.uint8)
    if op.options is not None:
      o.builtinOptionsType = op.options_type
      o.builtinOptions = op.options
    sg.operators.append(o)
  model.operatorCodes = []
  for builtin, custom in codes:
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    if custom:
      code.customCode = custom.encode()
    model.operatorCodes.append(code)
  sg.inputs = np.array([index[n] for n in inputs], np.int32)
  sg.outputs = np.array([index[n] for n in outputs], np.int32)
  model.subgraphs = [sg]
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
