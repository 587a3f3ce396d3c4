"""Conv2D, DepthwiseConv2D and Dense in the kernel flavor.

Forward: TFLM's CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, float or int8
(per-channel int8 weights read from flash, int32 bias), with the ReLU/ReLU6
fused. A frozen float 1x1 conv becomes a FULLY_CONNECTED on the 4-D tensor:
TFLM's CONV_2D keeps 8 bytes per output channel of persistent arena even for
float models, FULLY_CONNECTED none. For the same reason the train step's other
convs run on TL_CONV and its depthwise convs on TL_DEPTHWISE_CONV, float or
int8 (value for value TFLM's int8 kernels, the requantization multipliers
computed per invoke into scratch), which also write the ReLU mask. An int8
predict graph uses them too (it runs TL_INVERTED_RESIDUAL already); a float
one keeps the builtins, for runtimes without TL_* ops.

Backward, one op per layer (only what the method trains):
  TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE  bias and weight gradients fused with
      the SGD step, in place on the variable tensors (no gradient buffers);
      the int32 bias / int8 filter copies of an int8 forward are rewritten
      from their float masters. When the input gradient is needed too, the
      same op writes it first, dy (masked on the fly) through the forward's
      own filter tensor (int8 or float; no transposed copy).
  TL_CONV_INPUT_GRAD / TL_DEPTHWISE_INPUT_GRAD  the input gradient of a layer
      that trains nothing.
  TL_DEPTHWISE_CHAIN_UPDATE  a bias-trained depthwise conv whose input is the
      ReLU output of a bias-trained conv used by nothing else (a 1x1 conv, or
      any conv that needs no input gradient, e.g. the stem): both layers'
      backward in one op, so the depthwise input gradient is never stored
      (only a row of it); the conv's own backward then emits nothing. A
      bias-only 1x1 conv without activation reading the depthwise output
      (alone) defers its backward to the same op (Grad.deferred), which then
      computes the depthwise output gradient row by row as well.
  TL_INVERTED_RESIDUAL_UPDATE  an int8 depthwise whose weights train
      (rules_sparse) between a frozen 1x1 expand conv + ReLU whose input
      gradient is needed and a linear 1x1 project conv (frozen, or
      channel-sparse: rules_sparse defers its update too): the expand
      offers its backward, the project defers its input gradient, and the
      depthwise's op streams the block's whole backward (block_update).
The 1-bit ReLU mask comes from the forward TL_* op, or from TL_RELU_MASK on a
builtin's fused output. The input is
kept for the backward pass only when a weight (not just the bias) trains, and
then as the tensor the previous layer produced (int8 in an int8 graph).
"""
import dataclasses
from typing import Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl.layers import partial
from tflite_tl.lower.ops._util import window_padding
from tflite_tl.lower.tl import block_update
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.emitter import DERIVED
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.emitter import Op
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.flatbuffer_writer import Tensor
from tflite_tl.lower.tl.rule_base import Call
from tflite_tl.lower.tl.rule_base import Emitted
from tflite_tl.lower.tl.rule_base import register
from tflite_tl.lower.tl.rule_base import square

_PADDING_CODE = {"VALID": 0, "SAME": 1}
_ACTIVATION_CODE = {None: 0, "relu": 1, "relu6": 2}  # TL_CONV, TL_DEPTHWISE_CONV
# Keras kernel layouts -> TFLite's: conv HWIO -> OHWI, depthwise HWC1 ->
# 1HWC (both a transpose by (3, 0, 1, 2)), dense [in, out] -> [out, in].
_TO_TFLITE_4D = (3, 0, 1, 2)
TO_KERAS_4D = (1, 2, 3, 0)
TO_KERAS_2D = (1, 0)


class _Params:
  """The filter/bias tensors of one layer and the variables they update."""

  def __init__(self):
    self.filter: Optional[Tensor] = None         # what the forward reads
    self.filter_var: Optional[Tensor] = None     # float variable to update
    self.filter_q_var: Optional[Tensor] = None   # int8 copy to rewrite
    self.bias: Optional[Tensor] = None
    self.bias_var: Optional[Tensor] = None
    self.bias_q_var: Optional[Tensor] = None

  @property
  def trains(self) -> bool:
    return self.filter_var is not None or self.bias_var is not None


def _float_params(call: Call, kernel_short: str, tflite_filter: np.ndarray,
                  to_keras) -> _Params:
  p = _Params()
  em = call.em
  if call.trained(kernel_short):
    p.filter = p.filter_var = em.parameter(
        call.param_name(kernel_short), tflite_filter, to_keras=to_keras)
  else:
    p.filter = em.writer.constant(f"{call.name}/{kernel_short}",
                                  tflite_filter.astype(np.float32))
  if call.has_weight("bias"):
    bias = call.weight("bias")
    if call.trained("bias"):
      p.bias = p.bias_var = em.parameter(call.param_name("bias"), bias)
    else:
      p.bias = em.writer.constant(f"{call.name}/bias", bias)
  else:
    # TFLM's DEPTHWISE_CONV_2D Prepare requires a bias tensor (it frees the
    # optional one unchecked), so layers without a bias get zeros.
    channels = tflite_filter.shape[3 if kernel_short == "depthwise_kernel"
                                   else 0]
    p.bias = em.writer.constant(f"{call.name}/bias",
                                np.zeros([channels], np.float32))
  return p


def _int8_params(call: Call, kernel_short: str, tflite_filter: np.ndarray,
                 channel_axis: int, x_q: Quantization,
                 cached_by_kernels: bool = False,
                 float_bias: bool = True) -> _Params:
  """``cached_by_kernels``: the consuming kernel may precompute from a
  constant bias (Emitter.parameter). ``float_bias``: the consuming op (a
  TL_CONV or TL_DEPTHWISE_CONV) may read a trained bias's float master and
  quantize it per invoke, so no int32 copy of it lives between steps; a
  builtin consumer needs the copy. The QAS ablation (qas off) keeps it too:
  its update scales the bias gradient by the copy's scales."""
  p = _Params()
  em = call.em
  has_bias = call.has_weight("bias")
  lq = quant.layer_quantization(tflite_filter, channel_axis, x_q.scale[0],
                                call.weight("bias") if has_bias else None)
  p.filter = em.writer.constant(
      f"{call.name}/{kernel_short}", lq.filter_q,
      quantization=Quantization.per_channel(lq.filter_scales, channel_axis))
  bias_quantization = Quantization.per_channel(lq.bias_scales, 0)
  if has_bias and call.trained("bias"):
    name = call.param_name("bias")
    p.bias_var = em.parameter(name, call.weight("bias"),
                              cached_by_kernels=cached_by_kernels)
    if float_bias and call.policy.qas:
      p.bias = p.bias_var
      return p
    p.bias = p.bias_q_var = em.parameter(
        f"{name}:int32", lq.bias_q, dtype=np.int32,
        quantization=bias_quantization, role=DERIVED, parameter=name,
        cached_by_kernels=cached_by_kernels)
  else:
    p.bias = em.writer.constant(f"{call.name}/bias:int32", lq.bias_q,
                                quantization=bias_quantization)
  return p


def _geometry(call: Call, kernel_hw, strides: int):
  padding = call.layer.padding.upper()
  if padding not in _PADDING_CODE:
    raise call.unsupported(f"padding '{call.layer.padding}' is not supported.")
  if getattr(call.layer, "data_format", "channels_last") != "channels_last":
    raise call.unsupported("only data_format='channels_last' is supported.")
  h, w = call.node.in_shapes[0][1:3]
  window_padding(padding, h, kernel_hw[0], strides)  # raises if VALID misfits
  window_padding(padding, w, kernel_hw[1], strides)
  return padding


def _mask(call: Call, y: Tensor) -> Optional[Tensor]:
  """The 1-bit mask of the fused ReLU when the backward pass crosses it."""
  kind = call.node.activation
  if kind is None or not call.backward_reaches:
    return None
  return call.em.relu_mask(y, kind)


def _own_mask(call: Call, y: Tensor) -> Optional[Tensor]:
  """The mask tensor a TL_CONV / TL_DEPTHWISE_CONV writes as its second
  output, when the backward pass crosses the fused activation."""
  if call.node.activation is None or not call.backward_reaches:
    return None
  return call.em.writer.activation(f"{y.name}/mask",
                                   [(y.num_elements + 7) // 8], np.uint8)


def tl_forward(call: Call, op: str, inputs, y: Tensor,
               geometry: dict) -> Optional[Tensor]:
  """``op`` (TL_CONV or TL_DEPTHWISE_CONV, float or int8) of ``inputs`` into
  ``y`` with the node's fused activation; returns the mask it writes as its
  second output (None unless the backward crosses the activation)."""
  mask = _own_mask(call, y)
  outputs = [y] + ([mask] if mask is not None else [])
  extra = {"standardize": False, "epsilon": 0.0} if op == "TL_CONV" else {}
  call.em.tl(op, inputs, outputs,
             activation=_ACTIVATION_CODE[call.node.activation], **extra,
             **geometry)
  return mask


def _pick_mask(own: Optional[Tensor], g: Grad) -> Optional[Tensor]:
  if own is not None and g.mask is not None:
    raise AssertionError("a fused activation's gradient arrived masked")
  return own if own is not None else g.mask


def _backward(call: Call, p: _Params, own_mask, saved_input, *, input_grad_op,
              update_op, geometry_options, filter_for_grad, input_shape):
  em = call.em
  need_dx = call.need_input_grad(0)

  def backward(g: Grad):
    fused = em.fused_backward.pop(call.name, None)
    if fused is not None:  # a downstream TL_DEPTHWISE_CHAIN_UPDATE did it
      return fused
    mask = _pick_mask(own_mask, g)
    dx = None
    if need_dx:
      dx = em.writer.activation(f"{call.name}/grad_input", input_shape)
    if p.trains:
      # One op: the input gradient (when needed, through the step's starting
      # filter), then the in-place update.
      inputs = [g.tensor, mask,
                saved_input if p.filter_var is not None else None,
                None, p.filter_var, p.filter_q_var, p.bias_var, p.bias_q_var]
      if dx is not None:
        inputs.append(filter_for_grad)
      extra = {"channel_axis": 0} if update_op == "TL_CONV_UPDATE" else {}
      em.tl(update_op, inputs, [dx] if dx is not None else [],
            learning_rate=call.policy.learning_rate, qas=call.policy.qas,
            **geometry_options, **extra)
    elif need_dx:
      em.tl(input_grad_op, [g.tensor, filter_for_grad, mask], [dx],
            **geometry_options)
    return [Grad(dx) if dx is not None else None]

  return backward if (need_dx or p.trains) else None


def _output(call: Call, int8: bool) -> Tensor:
  if int8:
    return call.em.writer.activation(call.name, call.node.out_shape, np.int8,
                                     call.out_quantization())
  return call.em.writer.activation(call.name, call.node.out_shape)


def conv_rule(call: Call) -> Emitted:
  layer = call.layer
  _check_activation(call)
  strides = square(call, layer.strides, "strides")
  if square(call, layer.dilation_rate, "dilation_rate") != 1:
    raise call.unsupported("dilated convolutions are not supported.")
  kernel = call.weight("kernel")  # [kh, kw, Cin/g, Cout]
  padding = _geometry(call, kernel.shape[:2], strides)
  groups = int(getattr(layer, "groups", 1))
  tflite_filter = np.transpose(kernel, _TO_TFLITE_4D)  # [Cout, kh, kw, Cin/g]
  int8 = call.int8("kernel")
  x = call.inputs[0]
  em = call.em
  act = call.node.activation
  pointwise = (kernel.shape[0] == kernel.shape[1] == 1 and strides == 1
               and groups == 1)
  if int8:
    x_q = call.in_quantization(0)
    x_in = em.as_int8(x, x_q)
    p = _int8_params(call, "kernel", tflite_filter, 0, x_q)
  else:
    x_in = em.as_float(x)
    matmul = pointwise and not call.trained("kernel")
    # A frozen float 1x1 conv: the [Cout, Cin] weights of a matmul, one
    # constant the forward and the input gradient both read.
    p = _float_params(call, "kernel",
                      tflite_filter.reshape(tflite_filter.shape[::3]) if matmul
                      else tflite_filter, TO_KERAS_4D)
  y = _output(call, int8)
  filter_for_grad = p.filter
  geometry = {"padding": _PADDING_CODE[padding], "stride_h": strides,
              "stride_w": strides}
  if pointwise and not int8 and p.filter_var is None:
    em.writer.builtin(Op.FULLY_CONNECTED, [x_in, p.filter, p.bias], [y],
                      *opt.fully_connected(act, keep_num_dims=True))
    own_mask = _mask(call, y)
  elif call.policy.training or int8:
    # The train step's forward, and any int8 forward (value for value TFLM's
    # CONV_2D): TL_CONV keeps no per-channel persistent buffers (an int8 one
    # computes its requantization multipliers per invoke, into scratch) and
    # writes the activation's mask in the same op.
    own_mask = tl_forward(call, "TL_CONV", [x_in, p.filter, p.bias], y,
                          geometry)
  else:
    em.writer.builtin(Op.CONV_2D, [x_in, p.filter, p.bias], [y],
                      *opt.conv2d(strides, padding, act))
    own_mask = _mask(call, y)
  backward = _backward(call, p, own_mask, x, input_grad_op="TL_CONV_INPUT_GRAD",
                       update_op="TL_CONV_UPDATE", geometry_options=geometry,
                       filter_for_grad=filter_for_grad,
                       input_shape=call.node.in_shapes[0])
  _offer_chain_upstream(call, p, own_mask, pointwise, filter_for_grad)
  if int8:
    # A frozen expand / project conv around a trained int8 depthwise:
    # TL_INVERTED_RESIDUAL_UPDATE does their input gradients (block_update).
    block_update.offer_expand(call, filter_for_grad, own_mask, pointwise)
    backward = block_update.defer_project(call, filter_for_grad, own_mask,
                                          pointwise, backward)
  if pointwise:
    backward = _deferred_pointwise(call, p, own_mask, filter_for_grad, backward)
  return Emitted(y, backward)


@dataclasses.dataclass(frozen=True)
class _ChainDownstream:
  """A bias-only 1x1 conv's backward, left to TL_DEPTHWISE_CHAIN_UPDATE."""
  name: str
  filter: Tensor
  bias_var: Tensor
  bias_q_var: Optional[Tensor]


def _deferred_pointwise(call: Call, p: _Params, own_mask, filter_for_grad,
                        backward):
  """A bias-only 1x1 conv without activation whose input is a chained
  depthwise conv's output (used by nothing else) leaves its input gradient
  and bias step to that depthwise's TL_DEPTHWISE_CHAIN_UPDATE."""
  x_id = call.node.input_ids[0]
  if (backward is None or own_mask is not None or p.filter_var is not None
      or p.bias_var is None or not call.need_input_grad(0)
      or x_id not in call.em.accepts_deferred_grad
      or call.graph.consumers.get(x_id) != [call.node.index]):
    return backward
  down = _ChainDownstream(call.name, filter_for_grad, p.bias_var,
                          p.bias_q_var)

  def deferred(g: Grad):
    if g.mask is not None:
      return backward(g)
    return [Grad(g.tensor, deferred=down)]

  return deferred


@dataclasses.dataclass(frozen=True)
class _ChainUpstream:
  """What a conv's bias-only backward needs, for TL_DEPTHWISE_CHAIN_UPDATE."""
  name: str
  mask: Tensor
  bias_var: Tensor
  bias_q_var: Optional[Tensor]
  filter: Optional[Tensor]  # 1x1 filter of its input gradient, if needed
  input_shape: tuple


def _offer_chain_upstream(call: Call, p: _Params, own_mask, pointwise: bool,
                          filter_for_grad: Tensor) -> None:
  """Lets a depthwise conv reading this conv's ReLU output fuse its backward:
  only the bias trains, and an input gradient (if needed) is a 1x1 conv's."""
  need_dx = call.need_input_grad(0)
  if (own_mask is None or p.filter_var is not None or p.bias_var is None
      or (need_dx and not pointwise)):
    return
  out_id = call.node.activation_output_id or call.node.output_id
  call.em.fusable_backward[out_id] = _ChainUpstream(
      call.name, own_mask, p.bias_var, p.bias_q_var,
      filter_for_grad if need_dx else None, tuple(call.node.in_shapes[0]))


def _chain_backward(call: Call, p: _Params, own_mask, up: _ChainUpstream,
                    geometry_options):
  """The depthwise conv's and its upstream conv's backward in one op."""
  em = call.em
  in_h, in_w = call.node.in_shapes[0][1:3]

  def backward(g: Grad):
    mask = _pick_mask(own_mask, g)
    up_dx = None
    if up.filter is not None:
      up_dx = em.writer.activation(f"{up.name}/grad_input", up.input_shape)
    inputs = [g.tensor, mask, p.filter, p.bias_var, p.bias_q_var, up.mask,
              up.bias_var, up.bias_q_var]
    if up_dx is not None or g.deferred is not None:
      inputs.append(up.filter if up_dx is not None else None)
    if g.deferred is not None:  # g is the downstream 1x1 conv's output grad
      ds = g.deferred
      inputs += [ds.filter, ds.bias_var, ds.bias_q_var]
    em.tl("TL_DEPTHWISE_CHAIN_UPDATE", inputs,
          [up_dx] if up_dx is not None else [], in_h=int(in_h), in_w=int(in_w),
          learning_rate=call.policy.learning_rate, qas=call.policy.qas,
          **geometry_options)
    if up_dx is None:
      return [None]  # the upstream needs no input gradient: backward ends
    em.fused_backward[up.name] = [Grad(up_dx)]
    return [Grad(up_dx)]

  return backward


def _chain_upstream(call: Call, p: _Params) -> Optional[_ChainUpstream]:
  """The fusable upstream of a bias-only depthwise conv, or None."""
  x_id = call.node.input_ids[0]
  up = call.em.fusable_backward.get(x_id)
  if (not isinstance(up, _ChainUpstream) or not call.need_input_grad(0)
      or p.filter_var is not None
      or p.bias_var is None
      or call.graph.consumers.get(x_id) != [call.node.index]):
    return None
  return up


def depthwise_rule(call: Call) -> Emitted:
  layer = call.layer
  _check_activation(call)
  strides = square(call, layer.strides, "strides")
  if square(call, layer.dilation_rate, "dilation_rate") != 1:
    raise call.unsupported("dilated depthwise convolutions are not supported.")
  kernel = call.weight("depthwise_kernel")  # [kh, kw, C, M]
  if kernel.shape[3] != 1:
    raise call.unsupported("depth_multiplier != 1 is not supported.")
  padding = _geometry(call, kernel.shape[:2], strides)
  tflite_filter = np.transpose(kernel, _TO_TFLITE_4D)  # [1, kh, kw, C]
  int8 = call.int8("depthwise_kernel")
  x = call.inputs[0]
  em = call.em
  if int8:
    x_q = call.in_quantization(0)
    x_in = em.as_int8(x, x_q)
    p = _int8_params(call, "depthwise_kernel", tflite_filter, 3, x_q)
  else:
    x_in = em.as_float(x)
    p = _float_params(call, "depthwise_kernel", tflite_filter, TO_KERAS_4D)
  y = _output(call, int8)
  geometry = {"padding": _PADDING_CODE[padding], "stride_h": strides,
              "stride_w": strides}
  if call.policy.training or int8:
    # The train step's forward, and any int8 forward: TL_DEPTHWISE_CONV keeps
    # no per-channel persistent buffers (TFLM's DEPTHWISE_CONV_2D keeps 8
    # bytes per channel, even in float; an int8 TL_DEPTHWISE_CONV computes
    # them per invoke into scratch) and writes the activation's mask in the
    # same op.
    own_mask = tl_forward(call, "TL_DEPTHWISE_CONV", [x_in, p.filter, p.bias],
                          y, geometry)
  else:
    em.writer.builtin(Op.DEPTHWISE_CONV_2D, [x_in, p.filter, p.bias], [y],
                      *opt.depthwise_conv2d(strides, padding,
                                            call.node.activation))
    own_mask = _mask(call, y)
  up = _chain_upstream(call, p) if call.policy.training else None
  if up is not None:
    em.accepts_deferred_grad.add(call.node.activation_output_id
                                 or call.node.output_id)
    return Emitted(y, _chain_backward(call, p, own_mask, up, geometry))
  backward = _backward(call, p, own_mask, x,
                       input_grad_op="TL_DEPTHWISE_INPUT_GRAD",
                       update_op="TL_DEPTHWISE_UPDATE",
                       geometry_options=geometry, filter_for_grad=p.filter,
                       input_shape=call.node.in_shapes[0])
  return Emitted(y, backward)


def _activation(layer) -> str:
  act = getattr(layer, "activation", None)
  return getattr(act, "__name__", str(act)) if act is not None else "linear"


def _check_activation(call: Call) -> None:
  name = _activation(call.layer)
  if name in ("linear", "relu", "relu6"):
    return
  if name == "softmax" and call.node.is_model_output:
    return  # training uses the logits; the predict graph adds the softmax
  raise call.unsupported(
      f"activation '{name}' is not supported by the kernel flavor (linear, "
      "relu, relu6, and softmax on the model's output).")


def dense_rule(call: Call) -> Emitted:
  _check_activation(call)
  if len(call.node.in_shapes[0]) != 2:
    raise call.unsupported(
        f"Dense on a rank-{len(call.node.in_shapes[0])} input is not "
        "supported; add Flatten or GlobalAveragePooling2D before it.")
  kernel = call.weight("kernel")  # [in, out]
  tflite_weights = np.ascontiguousarray(kernel.T)  # [out, in]
  int8 = call.int8("kernel")
  x = call.inputs[0]
  em = call.em
  if int8:
    x_q = call.in_quantization(0)
    x_in = em.as_int8(x, x_q)
    # CMSIS-NN's int8 FULLY_CONNECTED folds a constant bias into sums it
    # computes at Prepare.
    p = _int8_params(call, "kernel", tflite_weights, 0, x_q,
                     cached_by_kernels=True, float_bias=False)
  else:
    x_in = em.as_float(x)
    p = _float_params(call, "kernel", tflite_weights, TO_KERAS_2D)
  y = _output(call, int8)
  em.writer.builtin(Op.FULLY_CONNECTED, [x_in, p.filter, p.bias], [y],
                    *opt.fully_connected(call.node.activation))
  if call.node.is_model_output and _activation(call.layer) == "softmax":
    call.em.softmax_output = True
  own_mask = _mask(call, y)
  geometry = {"padding": 0, "stride_h": 1, "stride_w": 1}
  backward = _backward(call, p, own_mask, x, input_grad_op="TL_CONV_INPUT_GRAD",
                       update_op="TL_CONV_UPDATE", geometry_options=geometry,
                       filter_for_grad=p.filter,
                       input_shape=call.node.in_shapes[0])
  return Emitted(y, backward)


register((keras.layers.Conv2D, partial.Conv2D), conv_rule)
register((keras.layers.DepthwiseConv2D, partial.DepthwiseConv2D),
         depthwise_rule)
register((keras.layers.Dense, partial.Dense), dense_rule)
