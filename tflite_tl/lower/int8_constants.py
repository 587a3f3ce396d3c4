"""Frozen float32 kernels of a converted .tflite stored as int8.

The TF converter writes each frozen kernel as a float32 constant, and a
second one for the input gradient (flipped, transposed). When the kernels
were given their per-channel int8 values before lowering
(:mod:`tflite_tl.lower.fake_quant`), every such constant is exactly
``float32(q) * s`` along one axis, so it can be stored as int8 ``q`` and
rebuilt at run time with builtin ops only:

  q (int8, one copy per kernel) -> [REVERSE_V2] -> [TRANSPOSE]
    -> DEQUANTIZE (scale 1, zero point 0: float32 q exactly)
    -> MUL by the per-channel scales (float32 q * s, bit for bit the
       constant it replaces) -> the op that read the constant.

TFLM's DEQUANTIZE is per-tensor only, hence the MUL. Each replaced constant
is rebuilt right before the first op that reads it (the converter writes one
constant per layout, each read by one op), so its float32 value lives in
the arena only while that op runs (the transient is 2 x 4 bytes per
weight: the dequantized q and the product). Constants of other shapes or
values (masks, fixed resampling kernels, biases) are left as they are.

With ``chunk_elements`` a FULLY_CONNECTED op whose weight exceeds it is split
into row blocks (output features), each with its own chain and op, joined by
CONCATENATION: the transient drops to the size of one block and every output
is the same dot product, so the result is unchanged.
"""
import copy
import dataclasses
import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflite_tl.flatbuffer import edit
from tflite_tl.lower.fake_quant import FrozenKernel

_OP = schema.BuiltinOperator
_TT = schema.TensorType
# TFLM's CONCATENATION takes at most 10 inputs (kMaxInputNum).
_MAX_CONCAT_INPUTS = 10


@dataclasses.dataclass
class Int8Stats:
  """What :func:`store_int8` changed.

  Attributes:
    kernels: frozen kernels stored as int8.
    constants: float32 constants replaced (forward and backward copies).
    float_bytes: bytes of those float32 constants.
    int8_bytes: bytes of the int8 tensors that replace them.
    unmatched: names of frozen kernels with no constant in the graph (the
      converter folded them into another constant, which stays float32).
    chunked_ops: FULLY_CONNECTED ops split into row blocks.
  """
  kernels: int = 0
  constants: int = 0
  float_bytes: int = 0
  int8_bytes: int = 0
  unmatched: List[str] = dataclasses.field(default_factory=list)
  chunked_ops: int = 0


def _key(values: np.ndarray) -> Tuple[int, bytes]:
  flat = np.sort(np.asarray(values, np.float32).reshape(-1))
  return flat.size, flat.tobytes()


def per_channel_int8(values: np.ndarray, scales: np.ndarray
                     ) -> Optional[Tuple[np.ndarray, int]]:
  """(q int8, axis) with ``float32(q) * scales`` along ``axis`` equal to
  ``values`` bit for bit, or None."""
  values = np.asarray(values, np.float32)
  scales = np.asarray(scales, np.float32)
  for axis in range(values.ndim):
    if values.shape[axis] != scales.size:
      continue
    shape = [1] * values.ndim
    shape[axis] = -1
    s = scales.reshape(shape)
    q = np.round(values / s)
    if np.any(np.abs(q) > 127):
      continue
    if np.array_equal((q.astype(np.float32) * s).astype(np.float32), values):
      return q.astype(np.int8), axis
  return None


def find_layout(source: np.ndarray, target: np.ndarray
                ) -> Optional[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
  """(reversed axes, permutation) with ``transpose(reverse(source, axes),
  perm) == target``, or None."""
  nd = source.ndim
  if nd != target.ndim or nd > 4:
    return None
  spatial = [a for a in range(nd) if source.shape[a] > 1]
  for r in range(len(spatial) + 1):
    for axes in itertools.combinations(spatial, r):
      flipped = np.flip(source, axes) if axes else source
      for perm in itertools.permutations(range(nd)):
        if tuple(flipped.shape[p] for p in perm) != tuple(target.shape):
          continue
        if np.array_equal(np.transpose(flipped, perm), target):
          return tuple(axes), tuple(perm)
  return None


class _Graph:
  """Subgraph 0 of a ``schema.ModelT`` with helpers to add tensors/ops."""

  def __init__(self, model):
    self.model = model
    self.sg = model.subgraphs[0]
    self._constants = {}  # (type, shape, bytes) -> tensor, unnamed only
    self._buffers = {}    # bytes -> buffer added here

  def _buffer(self, raw: bytes) -> int:
    if raw not in self._buffers:
      buf = schema.BufferT()
      buf.data = np.frombuffer(raw, np.uint8).copy()
      self.model.buffers.append(buf)
      self._buffers[raw] = len(self.model.buffers) - 1
    return self._buffers[raw]

  def opcode(self, code: int) -> int:
    for i, oc in enumerate(self.model.operatorCodes):
      if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code and (
          oc.customCode is None):
        return i
    oc = schema.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)
    oc.version = 1
    self.model.operatorCodes.append(oc)
    return len(self.model.operatorCodes) - 1

  def op_code(self, op) -> int:
    oc = self.model.operatorCodes[op.opcodeIndex]
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)

  def tensor(self, name: str, shape, ttype: int,
             data: Optional[np.ndarray] = None, quant=None) -> int:
    """A new tensor; an unnamed constant equal to an earlier one is that
    one, and equal constant bytes share one buffer."""
    key = None
    if data is not None:
      raw = np.ascontiguousarray(data).tobytes()
      key = (ttype, tuple(int(d) for d in shape), raw)
      if not name and key in self._constants:
        return self._constants[key]
    t = schema.TensorT()
    t.name = name.encode()
    t.shape = np.asarray(shape, np.int32)
    t.type = ttype
    t.buffer = 0 if data is None else self._buffer(raw)
    t.quantization = quant
    self.sg.tensors.append(t)
    index = len(self.sg.tensors) - 1
    if key is not None and not name:
      self._constants[key] = index
    return index

  def op(self, code: int, inputs, outputs, options_type=0, options=None):
    op = schema.OperatorT()
    op.opcodeIndex = self.opcode(code)
    op.inputs = np.asarray(inputs, np.int32)
    op.outputs = np.asarray(outputs, np.int32)
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    return op

  def values(self, index: int) -> Optional[np.ndarray]:
    t = self.sg.tensors[index]
    data = self.model.buffers[t.buffer].data if t.buffer else None
    if data is None or t.type != _TT.FLOAT32 or t.isVariable:
      return None
    shape = [int(d) for d in t.shape]
    arr = np.frombuffer(np.asarray(data, np.uint8).tobytes(), np.float32)
    if arr.size != int(np.prod(shape)):
      return None
    return arr.reshape(shape)


def _unit_quant():
  q = schema.QuantizationParametersT()
  q.scale = [1.0]
  q.zeroPoint = [0]
  return q


@dataclasses.dataclass
class _Use:
  tensor: int               # the float32 constant
  values: np.ndarray
  kernel: FrozenKernel
  source: int = -1          # int8 tensor it is rebuilt from
  flips: Tuple[int, ...] = ()
  perm: Tuple[int, ...] = ()
  scale_shape: Tuple[int, ...] = ()
  reverse_scales: bool = False


def _rebuild(g: _Graph, use: _Use, out: int, rows=None) -> list:
  """Ops that write ``use``'s float32 value to tensor ``out``; with ``rows``
  = (begin, end) only that block of its first axis (sliced from the int8
  source before any transpose, so the transient stays one block)."""
  ops = []
  x = use.source
  shape = [int(d) for d in g.sg.tensors[x].shape]
  if use.flips:
    axes = g.tensor("", [len(use.flips)], _TT.INT32,
                    np.asarray(use.flips, np.int32))
    y = g.tensor("", shape, _TT.INT8, quant=_unit_quant())
    ops.append(g.op(_OP.REVERSE_V2, [x, axes], [y],
                    schema.BuiltinOptions.ReverseV2Options,
                    schema.ReverseV2OptionsT()))
    x = y
  perm = use.perm or tuple(range(len(shape)))
  scales = np.asarray(use.kernel.scales, np.float32)
  if use.reverse_scales:
    scales = scales[::-1]
  scales = scales.reshape(use.scale_shape)
  if rows is not None:
    begin, end = rows
    axis = perm[0]
    lo = [0] * len(shape)
    hi = list(shape)
    lo[axis], hi[axis] = begin, end
    spec = [g.tensor("", [len(v)], _TT.INT32, np.asarray(v, np.int32))
            for v in (lo, hi, [1] * len(shape))]  # begin, end, strides
    shape = [h - l for l, h in zip(lo, hi)]
    y = g.tensor("", shape, _TT.INT8, quant=_unit_quant())
    ops.append(g.op(_OP.STRIDED_SLICE, [x] + spec, [y],
                    schema.BuiltinOptions.StridedSliceOptions,
                    schema.StridedSliceOptionsT()))
    x = y
    if scales.shape[0] > 1:
      scales = scales[begin:end]
  if perm != tuple(range(len(perm))):
    perm_t = g.tensor("", [len(perm)], _TT.INT32,
                      np.asarray(perm, np.int32))
    shape = [shape[p] for p in perm]
    y = g.tensor("", shape, _TT.INT8, quant=_unit_quant())
    ops.append(g.op(_OP.TRANSPOSE, [x, perm_t], [y],
                    schema.BuiltinOptions.TransposeOptions,
                    schema.TransposeOptionsT()))
    x = y
  q = g.tensor("", shape, _TT.FLOAT32)
  ops.append(g.op(_OP.DEQUANTIZE, [x], [q],
                  schema.BuiltinOptions.DequantizeOptions,
                  schema.DequantizeOptionsT()))
  s = g.tensor("", scales.shape, _TT.FLOAT32, scales)
  mul = schema.MulOptionsT()
  mul.fusedActivationFunction = schema.ActivationFunctionType.NONE
  ops.append(g.op(_OP.MUL, [q, s], [out], schema.BuiltinOptions.MulOptions,
                  mul))
  return ops


def _plan(g: _Graph, kernels: Sequence[FrozenKernel], stats: Int8Stats
          ) -> Dict[int, _Use]:
  """The constants to replace, each with its int8 source and layout."""
  by_key = {}
  for k in kernels:
    by_key.setdefault(_key(k.values), k)
  found: Dict[str, List[_Use]] = {}
  for i in range(len(g.sg.tensors)):
    values = g.values(i)
    if values is None or values.size < 2:
      continue
    kernel = by_key.get(_key(values))
    if kernel is not None:
      found.setdefault(kernel.name, []).append(_Use(i, values, kernel))
  stats.unmatched = sorted({k.name for k in kernels} - set(found))
  uses: Dict[int, _Use] = {}
  for name, group in found.items():
    sources = []  # (int8 tensor, values, channel axis)
    for use in group:
      for src, src_values, axis in sources:
        layout = find_layout(src_values, use.values)
        if layout is not None:
          use.source = src
          use.flips, use.perm = layout
          new_axis = use.perm.index(axis)
          use.reverse_scales = axis in use.flips
          use.scale_shape = tuple(
              use.values.shape[a] if a == new_axis else 1
              for a in range(use.values.ndim))
          break
      else:
        fit = per_channel_int8(use.values, use.kernel.scales)
        if fit is None:
          continue
        q, axis = fit
        src = g.tensor(use.kernel.name + "/int8", q.shape, _TT.INT8, q,
                       _unit_quant())
        sources.append((src, use.values, axis))
        use.source = src
        use.perm = tuple(range(q.ndim))
        use.scale_shape = tuple(q.shape[a] if a == axis else 1
                                for a in range(q.ndim))
        stats.int8_bytes += q.size
      uses[use.tensor] = use
    stats.kernels += bool(sources)
  return uses


def _chunk_bounds(rows: int, cols: int, chunk_elements: int):
  """[(begin, end)] row blocks of at most ``chunk_elements`` weights."""
  per = max(1, chunk_elements // max(cols, 1))
  return [(b, min(rows, b + per)) for b in range(0, rows, per)]


def _chunked_fc(g: _Graph, op, use: _Use, chunk_elements: int) -> list:
  """``op`` (FULLY_CONNECTED reading ``use``) as row blocks joined by
  CONCATENATION; a bias (constant or variable) and the fused activation
  follow as one ADD, the same float32 sum the op computes last."""
  rows, cols = [int(d) for d in use.values.shape]
  out = int(op.outputs[0])
  out_t = g.sg.tensors[out]
  out_shape = [int(d) for d in out_t.shape]
  bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
  options = copy.copy(op.builtinOptions)
  activation = options.fusedActivationFunction
  if bias >= 0:
    options.fusedActivationFunction = schema.ActivationFunctionType.NONE
  ops, parts = [], []
  for begin, end in _chunk_bounds(rows, cols, chunk_elements):
    w = g.tensor("", [end - begin, cols], _TT.FLOAT32)
    ops += _rebuild(g, use, w, rows=(begin, end))
    part = g.tensor("", out_shape[:-1] + [end - begin], _TT.FLOAT32)
    parts.append(part)
    ops.append(g.op(_OP.FULLY_CONNECTED, [int(op.inputs[0]), w, -1], [part],
                    op.builtinOptionsType, options))
  concat = schema.ConcatenationOptionsT()
  concat.axis = len(out_shape) - 1
  concat.fusedActivationFunction = (
      schema.ActivationFunctionType.NONE if bias >= 0 else activation)
  joined = out
  if bias >= 0:
    joined = g.tensor("", out_shape, _TT.FLOAT32)
  while len(parts) > _MAX_CONCAT_INPUTS:
    groups = [parts[i:i + _MAX_CONCAT_INPUTS]
              for i in range(0, len(parts), _MAX_CONCAT_INPUTS)]
    parts = []
    for group in groups:
      width = sum(int(g.sg.tensors[t].shape[-1]) for t in group)
      parts.append(g.tensor("", out_shape[:-1] + [width], _TT.FLOAT32))
      plain = schema.ConcatenationOptionsT()
      plain.axis = concat.axis
      ops.append(g.op(_OP.CONCATENATION, group, [parts[-1]],
                      schema.BuiltinOptions.ConcatenationOptions, plain))
  ops.append(g.op(_OP.CONCATENATION, parts, [joined],
                  schema.BuiltinOptions.ConcatenationOptions, concat))
  if bias >= 0:
    add = schema.AddOptionsT()
    add.fusedActivationFunction = activation
    ops.append(g.op(_OP.ADD, [joined, bias], [out],
                    schema.BuiltinOptions.AddOptions, add))
  return ops


def store_int8(tflite_bytes: bytes, kernels: Sequence[FrozenKernel],
               chunk_elements: Optional[int] = None
               ) -> Tuple[bytes, Int8Stats]:
  """A copy of ``tflite_bytes`` with every float32 constant that is a
  layout of one of ``kernels`` stored as int8 (see the module docstring).

  Returns the new bytes and :class:`Int8Stats`.
  """
  model = edit.unpack(tflite_bytes)
  g = _Graph(model)
  stats = Int8Stats()
  uses = _plan(g, kernels, stats)
  new_ops, rebuilt, chunked = [], set(), set()
  for op in g.sg.operators:
    inputs = [int(i) for i in op.inputs] if op.inputs is not None else []
    if (chunk_elements and g.op_code(op) == _OP.FULLY_CONNECTED
        and len(inputs) > 1 and inputs[1] in uses
        and uses[inputs[1]].values.ndim == 2
        and uses[inputs[1]].values.size > chunk_elements
        and inputs.count(inputs[1]) == 1
        and op.builtinOptionsType
        == schema.BuiltinOptions.FullyConnectedOptions):
      new_ops += _chunked_fc(g, op, uses[inputs[1]], chunk_elements)
      stats.chunked_ops += 1
      chunked.add(inputs[1])
      continue
    for i in inputs:
      if i in uses and i not in rebuilt:
        new_ops += _rebuild(g, uses[i], i)
        rebuilt.add(i)
    new_ops.append(op)
  g.sg.operators = new_ops
  for i in rebuilt | chunked:
    t = g.sg.tensors[i]
    stats.constants += 1
    stats.float_bytes += 4 * int(np.prod([int(d) for d in t.shape]))
    model.buffers[t.buffer].data = None
    t.buffer = 0
    if i not in rebuilt:
      # Read by no op any more: TFLM would still plan a non-constant tensor
      # for the whole invoke, so it keeps one element.
      t.shape = np.asarray([1], np.int32)
      t.shapeSignature = None
  return edit.pack(model), stats
