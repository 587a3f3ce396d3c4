"""Writes a TFLite flatbuffer op by op (the kernel flavor's graph builder).

The TF converter decides the graph for the builtin flavor; the kernel flavor
emits every tensor and operator itself, so it controls what the TFLM arena
holds: variable tensors updated in place (no READ/ASSIGN_VARIABLE copies),
int8 tensors with their quantization, TL_* custom ops, and an operator order
that fixes each tensor's lifetime for TFLM's memory planner.

Constant data is aligned to 16 bytes in the file: TFLM reads weights in place
from flash, and Cortex-M FPU loads (VLDR) fault on unaligned floats. The
schema's object API (``BufferT.Pack``) does not align, so buffers are written
by hand. Output is deterministic: the same calls give the same bytes.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

_ALIGNMENT = 16

TENSOR_TYPES = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.int8): schema.TensorType.INT8,
    np.dtype(np.uint8): schema.TensorType.UINT8,
    np.dtype(np.int16): schema.TensorType.INT16,
    np.dtype(np.int64): schema.TensorType.INT64,
    np.dtype(np.bool_): schema.TensorType.BOOL,
}
NUMPY_TYPES = {v: k for k, v in TENSOR_TYPES.items()}


@dataclasses.dataclass(frozen=True)
class Quantization:
  """TFLite affine quantization: real = scale * (q - zero_point).

  One scale/zero point per tensor, or per channel along ``axis`` (filters:
  axis 0 in TFLite's OHWI layout; int32 biases: axis 0).
  """
  scale: Tuple[float, ...]
  zero_point: Tuple[int, ...]
  axis: int = 0

  @staticmethod
  def per_tensor(scale: float, zero_point: int) -> "Quantization":
    return Quantization((float(scale),), (int(zero_point),))

  @staticmethod
  def per_channel(scales, axis: int = 0) -> "Quantization":
    scales = tuple(float(s) for s in np.asarray(scales).reshape(-1))
    return Quantization(scales, (0,) * len(scales), axis)

  @property
  def is_per_tensor(self) -> bool:
    return len(self.scale) == 1


@dataclasses.dataclass(frozen=True)
class Tensor:
  """A tensor of the graph being written (what operators refer to)."""
  index: int
  name: str
  shape: Tuple[int, ...]
  dtype: np.dtype
  quantization: Optional[Quantization] = None
  is_variable: bool = False
  is_constant: bool = False

  @property
  def num_elements(self) -> int:
    return int(np.prod(self.shape)) if self.shape else 1

  @property
  def num_bytes(self) -> int:
    return self.num_elements * np.dtype(self.dtype).itemsize


class GraphWriter:
  """Accumulates one subgraph (subgraph 0) and writes the .tflite bytes."""

  def __init__(self, name: str = "main"):
    self.name = name
    self._tensors: List[schema.TensorT] = []
    self._tensor_meta: List[Tensor] = []
    self._buffers: List[Optional[bytes]] = [None]  # buffer 0: the empty one
    self._operators: List[schema.OperatorT] = []
    self._op_codes: List[Tuple[int, str]] = []
    self._op_code_index: Dict[Tuple[int, str], int] = {}
    self._names: Dict[str, int] = {}
    self._metadata: List[Tuple[str, bytes]] = []

  # --- tensors -----------------------------------------------------------------

  def _unique(self, name: str) -> str:
    if name not in self._names:
      self._names[name] = 0
      return name
    self._names[name] += 1
    return f"{name}_{self._names[name]}"

  def _add(self, name: str, shape: Sequence[int], dtype, data: Optional[bytes],
           quantization: Optional[Quantization], is_variable: bool) -> Tensor:
    dtype = np.dtype(dtype)
    if dtype not in TENSOR_TYPES:
      raise ValueError(f"Tensor {name!r}: unsupported dtype {dtype}.")
    name = self._unique(name)
    t = schema.TensorT()
    t.name = name
    t.shape = [int(d) for d in shape]
    t.type = TENSOR_TYPES[dtype]
    t.isVariable = bool(is_variable)
    if data is None:
      t.buffer = 0
    else:
      t.buffer = len(self._buffers)
      self._buffers.append(data)
    if quantization is not None:
      q = schema.QuantizationParametersT()
      q.scale = list(quantization.scale)
      q.zeroPoint = list(quantization.zero_point)
      q.quantizedDimension = int(quantization.axis)
      t.quantization = q
    index = len(self._tensors)
    self._tensors.append(t)
    meta = Tensor(index, name, tuple(int(d) for d in shape), dtype,
                  quantization, bool(is_variable), data is not None and
                  not is_variable)
    self._tensor_meta.append(meta)
    return meta

  def activation(self, name: str, shape: Sequence[int], dtype=np.float32,
                 quantization: Optional[Quantization] = None) -> Tensor:
    """A tensor computed at run time (planned in the arena's head)."""
    return self._add(name, shape, dtype, None, quantization, False)

  def constant(self, name: str, value, dtype=None,
               quantization: Optional[Quantization] = None) -> Tensor:
    """A constant read in place from the flatbuffer (flash on a board)."""
    array = np.asarray(value, dtype=dtype)
    return self._add(name, array.shape, array.dtype,
                     np.ascontiguousarray(array).tobytes(), quantization, False)

  def variable(self, name: str, value, dtype=None,
               quantization: Optional[Quantization] = None) -> Tensor:
    """A variable tensor (``is_variable``): persistent in the arena's tail,
    updated in place by the ops that own it.

    TFLM zero-fills variable tensors when it allocates them; the initial value
    stays in the tensor's buffer, and the runtime that loads the model (our
    TFLM runner, the exported firmware) copies it in after AllocateTensors.
    """
    array = np.asarray(value, dtype=dtype)
    return self._add(name, array.shape, array.dtype,
                     np.ascontiguousarray(array).tobytes(), quantization, True)

  def reshaped(self, t: Tensor, shape: Sequence[int], name: str) -> Tensor:
    """A second view of constant ``t`` with another shape, sharing its
    buffer (no second copy in flash)."""
    if not t.is_constant:
      raise ValueError(f"Only constants can be re-viewed; {t.name!r} is not.")
    if int(np.prod(shape)) != t.num_elements:
      raise ValueError(f"Cannot view {t.shape} as {tuple(shape)}.")
    name = self._unique(name)
    base = self._tensors[t.index]
    v = schema.TensorT()
    v.name = name
    v.shape = [int(d) for d in shape]
    v.type = base.type
    v.buffer = base.buffer
    v.quantization = base.quantization
    index = len(self._tensors)
    self._tensors.append(v)
    meta = dataclasses.replace(t, index=index, name=name,
                               shape=tuple(int(d) for d in shape))
    self._tensor_meta.append(meta)
    return meta

  def tensor(self, index: int) -> Tensor:
    return self._tensor_meta[index]

  @property
  def tensors(self) -> List[Tensor]:
    return list(self._tensor_meta)

  # --- operators ---------------------------------------------------------------

  def _op_code(self, builtin: int, custom: str = "") -> int:
    key = (builtin, custom)
    if key not in self._op_code_index:
      self._op_code_index[key] = len(self._op_codes)
      self._op_codes.append(key)
    return self._op_code_index[key]

  def builtin(self, op: int, inputs: Sequence[Optional[Tensor]],
              outputs: Sequence[Tensor], options=None,
              options_type: int = 0) -> None:
    """Appends a builtin operator (``schema.BuiltinOperator.X``) with its
    ``*OptionsT`` object; an input of None is an absent optional input."""
    o = schema.OperatorT()
    o.opcodeIndex = self._op_code(op)
    o.inputs = [-1 if t is None else t.index for t in inputs]
    o.outputs = [t.index for t in outputs]
    if options is not None:
      o.builtinOptionsType = options_type
      o.builtinOptions = options
    self._operators.append(o)

  def custom(self, name: str, inputs: Sequence[Optional[Tensor]],
             outputs: Sequence[Tensor], custom_options: bytes = b"") -> None:
    """Appends a custom operator (e.g. a TL_* training kernel)."""
    o = schema.OperatorT()
    o.opcodeIndex = self._op_code(schema.BuiltinOperator.CUSTOM, name)
    o.inputs = [-1 if t is None else t.index for t in inputs]
    o.outputs = [t.index for t in outputs]
    o.customOptions = list(custom_options) if custom_options else None
    o.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    self._operators.append(o)

  @property
  def num_operators(self) -> int:
    return len(self._operators)

  def add_metadata(self, name: str, data: bytes) -> None:
    self._metadata.append((name, bytes(data)))

  # --- serialisation -----------------------------------------------------------

  def finish(self, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
             description: str = "tflite-tl") -> bytes:
    """The .tflite bytes with ``inputs``/``outputs`` as subgraph 0's I/O."""
    metadata_buffers = []
    for name, data in self._metadata:
      metadata_buffers.append((name, len(self._buffers)))
      self._buffers.append(data)
    try:
      return self._serialise(inputs, outputs, description, metadata_buffers)
    finally:
      del self._buffers[len(self._buffers) - len(metadata_buffers):]

  def _serialise(self, inputs, outputs, description, metadata_buffers) -> bytes:
    builder = flatbuffers.Builder(1 << 20)
    buffer_offsets = [_pack_buffer(builder, data) for data in self._buffers]

    sg = schema.SubGraphT()
    sg.name = self.name
    sg.tensors = self._tensors
    sg.inputs = [t.index for t in inputs]
    sg.outputs = [t.index for t in outputs]
    sg.operators = self._operators
    subgraph_offset = sg.Pack(builder)

    code_offsets = []
    for builtin, custom in self._op_codes:
      c = schema.OperatorCodeT()
      c.builtinCode = builtin
      c.deprecatedBuiltinCode = min(builtin, 127)
      c.version = 1
      if custom:
        c.customCode = custom
      code_offsets.append(c.Pack(builder))

    metadata_offsets = []
    for name, buffer_index in metadata_buffers:
      m = schema.MetadataT()
      m.name = name
      m.buffer = buffer_index
      metadata_offsets.append(m.Pack(builder))

    description_offset = builder.CreateString(description)
    vectors = {}
    for key, offsets, start in (
        ("codes", code_offsets, schema.ModelStartOperatorCodesVector),
        ("subgraphs", [subgraph_offset], schema.ModelStartSubgraphsVector),
        ("buffers", buffer_offsets, schema.ModelStartBuffersVector),
        ("metadata", metadata_offsets, schema.ModelStartMetadataVector)):
      start(builder, len(offsets))
      for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
      vectors[key] = builder.EndVector()
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddOperatorCodes(builder, vectors["codes"])
    schema.ModelAddSubgraphs(builder, vectors["subgraphs"])
    schema.ModelAddDescription(builder, description_offset)
    schema.ModelAddBuffers(builder, vectors["buffers"])
    if metadata_offsets:
      schema.ModelAddMetadata(builder, vectors["metadata"])
    model = schema.ModelEnd(builder)
    builder.Finish(model, file_identifier=b"TFL3")
    return bytes(builder.Output())


def _pack_buffer(builder: flatbuffers.Builder, data: Optional[bytes]) -> int:
  data_offset = None
  if data:
    # A [ubyte] vector whose first byte is 16-byte aligned in the file.
    builder.StartVector(1, len(data), _ALIGNMENT)
    builder.head = builder.head - len(data)
    builder.Bytes[builder.head:builder.head + len(data)] = data
    data_offset = builder.EndVector()
  schema.BufferStart(builder)
  if data_offset is not None:
    schema.BufferAddData(builder, data_offset)
  return schema.BufferEnd(builder)
