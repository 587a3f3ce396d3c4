"""The state shared by the kernel flavor's layer rules while a graph is built.

An :class:`Emitter` wraps the :class:`GraphWriter` with the conversions the
rules need (int8 <-> float, masked gradients made explicit, gradient sums)
and a table of the graph's variable tensors: every trained parameter, its
float master copy and the int8/int32 copies the forward pass reads.
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl.flatbuffer_writer import GraphWriter
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.flatbuffer_writer import Tensor

Op = schema.BuiltinOperator

# Roles of variable tensors.
PARAM = "param"        # a trained parameter (float), named after the Keras weight
DERIVED = "derived"    # an int8/int32 copy of a parameter the forward reads


@dataclasses.dataclass(frozen=True)
class VariableSpec:
  """One variable tensor of a lowered graph."""
  name: str            # tensor name (Keras weight name for parameters)
  tensor: int          # index in subgraph 0
  shape: tuple
  dtype: str
  role: str
  parameter: str       # the Keras weight it stores or derives from
  # Transpose from the tensor's TFLite layout to the Keras weight's layout
  # (e.g. OHWI -> HWIO), None when they are the same.
  to_keras: Optional[tuple] = None
  # A tensor holding a whole kernel of which the parameter is only some
  # slices (channel-sparse layers): the slice indices and their axis, in the
  # tensor's layout.
  channels: Optional[tuple] = None
  channel_axis: Optional[int] = None

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Grad:
  """A float gradient, optionally still to be multiplied by a 1-bit mask.

  Rules that feed a gradient to a TL kernel pass the mask along (the kernels
  apply it on the fly, no masked copy); :meth:`Emitter.materialize` makes it
  explicit where an op cannot.
  """
  tensor: Tensor
  mask: Optional[Tensor] = None
  # Set by a 1x1 conv whose input gradient is left to the op that consumes
  # it (rules_conv: TL_DEPTHWISE_CHAIN_UPDATE computes it row by row): then
  # ``tensor`` is that conv's output gradient and ``deferred`` its backward.
  deferred: Optional[object] = None


class Emitter:
  """Graph writer plus the helpers and bookkeeping the layer rules share."""

  def __init__(self, name: str, *, learning_rate: float = 0.0,
               read_only_parameters: bool = False):
    self.writer = GraphWriter(name)
    self.learning_rate = float(learning_rate)
    # A graph that never updates its parameters (the predict graph) stores
    # them as constants: TFLM then reserves no arena for them, and on the
    # board the trainer points these tensors at the train graph's variables
    # (tflite_tl/firmware/csrc/tl_trainer.cc), so no byte is held twice.
    self.read_only_parameters = bool(read_only_parameters)
    self.variables: List[VariableSpec] = []
    self._parameters: Dict[str, Tensor] = {}
    # Set by the rule of a classifier that ends in a softmax: the predict
    # graph then outputs probabilities (training always uses the logits).
    self.softmax_output = False
    # Backward passes a downstream rule may fuse into its own op: the layer
    # that produces a Keras tensor (by id) registers what its backward needs;
    # a fusing rule records the layer's input gradients under its name, and
    # the layer's backward then returns them instead of emitting ops.
    self.fusable_backward: Dict[int, object] = {}
    self.fused_backward: Dict[str, list] = {}
    # Keras tensor ids whose gradient may arrive deferred (Grad.deferred).
    self.accepts_deferred_grad: set = set()
    # Keras tensor ids whose consumer, a frozen 1x1 conv, may leave its input
    # gradient to the producer (block_update: TL_INVERTED_RESIDUAL_UPDATE).
    self.accepts_deferred_input_grad: set = set()
    # The train step's gradients that have arrived for a Keras tensor id but
    # are not summed yet (the train graph's backward loop shares its dict): a
    # rule whose input gradient is one more term of such a sum may add them
    # in its own op (take_pending_grad) rather than leave an ADD whose two
    # inputs and output are all alive at once.
    self.pending_grads: Dict[int, List[Grad]] = {}

  # --- variables -----------------------------------------------------------------

  def parameter(self, name: str, value, dtype=np.float32,
                quantization: Optional[Quantization] = None,
                role: str = PARAM, parameter: Optional[str] = None,
                to_keras: Optional[tuple] = None,
                channels: Optional[list] = None,
                channel_axis: Optional[int] = None,
                cached_by_kernels: bool = False) -> Tensor:
    """A variable tensor holding a trained parameter (or a copy of one).

    In a graph with ``read_only_parameters`` it is a constant of the same
    name and value instead, unless ``cached_by_kernels``: a kernel that may
    precompute from constant inputs at Prepare (CMSIS-NN's int8
    FULLY_CONNECTED sums a constant filter and bias once) would never see
    the trained value, so those stay variables.
    """
    if name in self._parameters:
      raise ValueError(f"Variable {name!r} emitted twice.")
    if self.read_only_parameters and not cached_by_kernels:
      t = self.writer.constant(name, value, dtype=dtype,
                               quantization=quantization)
    else:
      t = self.writer.variable(name, value, dtype=dtype,
                               quantization=quantization)
    if t.name != name:
      raise ValueError(f"Variable name {name!r} collides with a tensor "
                       f"name of the graph.")
    self._parameters[name] = t
    self.variables.append(VariableSpec(
        name, t.index, tuple(t.shape), np.dtype(t.dtype).name, role,
        parameter or name, None if to_keras is None else tuple(to_keras),
        None if channels is None else tuple(int(c) for c in channels),
        channel_axis))
    return t

  # --- conversions ---------------------------------------------------------------

  def as_float(self, t: Tensor) -> Tensor:
    if t.dtype == np.float32:
      return t
    out = self.writer.activation(f"{t.name}/dequantized", t.shape)
    self.writer.builtin(Op.DEQUANTIZE, [t], [out], *opt.dequantize())
    return out

  def as_int8(self, t: Tensor, q: Quantization) -> Tensor:
    if t.dtype == np.int8 and t.quantization == q:
      return t
    out = self.writer.activation(f"{t.name}/quantized", t.shape, np.int8, q)
    self.writer.builtin(Op.QUANTIZE, [t], [out], *opt.quantize())
    return out

  def materialize(self, g: Grad) -> Tensor:
    """The gradient as a plain tensor (TL_MASKED_GRAD if it has a mask)."""
    if g.mask is None:
      return g.tensor
    out = self.writer.activation(f"{g.tensor.name}/masked", g.tensor.shape)
    self.tl("TL_MASKED_GRAD", [g.tensor, g.mask], [out])
    return out

  def add(self, a: Tensor, b: Tensor, name: str) -> Tensor:
    out = self.writer.activation(name, a.shape)
    self.writer.builtin(Op.ADD, [a, b], [out], *opt.add())
    return out

  def take_pending_grad(self, tensor_id: int, name: str) -> Optional[Tensor]:
    """The gradients already arrived for Keras tensor ``tensor_id``, summed
    into one plain tensor and taken out of the pending sum; None if there
    are none (or one is deferred to a fused op): the caller's op then adds
    them to the gradient it writes and returns the whole sum."""
    grads = self.pending_grads.get(tensor_id)
    if not grads or any(g.deferred is not None for g in grads):
      return None
    del self.pending_grads[tensor_id]
    return self.materialize(self.sum_grads(grads, name))

  def sum_grads(self, grads: List[Grad], name: str) -> Grad:
    if len(grads) == 1:
      return grads[0]
    total = self.materialize(grads[0])
    for g in grads[1:]:
      total = self.add(total, self.materialize(g), name)
    return Grad(total)

  # --- ops -----------------------------------------------------------------------

  def tl(self, op_name: str, inputs, outputs, **options) -> None:
    self.writer.custom(op_name, inputs, outputs, opt.tl(op_name, **options))

  def relu_mask(self, y: Tensor, kind: str) -> Tensor:
    """TL_RELU_MASK of an activation output (float or int8)."""
    mask = self.writer.activation(f"{y.name}/mask",
                                  [(y.num_elements + 7) // 8], np.uint8)
    self.tl("TL_RELU_MASK", [y], [mask], relu6=kind == "relu6")
    return mask

  def int32_constant(self, name: str, values) -> Tensor:
    return self.writer.constant(name, np.asarray(values, np.int32))
