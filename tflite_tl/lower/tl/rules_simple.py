"""Parameter-free layers in the kernel flavor: Add, ReLU, pooling, resizing,
padding, reshapes, Dropout and an output Softmax.

Backward ops: an Add passes its gradient on to both inputs unchanged (the
gradients of a tensor used twice are summed where the second one arrives);
pooling and bilinear resizing use TL_AVGPOOL_GRAD / TL_RESIZE_BILINEAR_GRAD;
a reshape reshapes the gradient (a pending ReLU mask stays valid: element
order does not change). A standalone ReLU (one that could not be fused into
its producer) keeps a 1-bit mask and hands its gradient on still masked, for
the next TL kernel to apply.
"""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.lower.ops._util import window_padding
from tflite_tl.lower.tl import block_update
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.emitter import Op
from tflite_tl.lower.tl.flatbuffer_writer import Tensor
from tflite_tl.lower.tl.model_graph import relu_kind
from tflite_tl.lower.tl.rule_base import Call
from tflite_tl.lower.tl.rule_base import Emitted
from tflite_tl.lower.tl.rule_base import register

_PADDING_CODE = {"VALID": 0, "SAME": 1}


def _like_input(call: Call, x: Tensor, shape) -> Tensor:
  """An output tensor with the input's type (and quantization, for int8)."""
  return call.em.writer.activation(call.name, shape, x.dtype, x.quantization)


def add_rule(call: Call) -> Emitted:
  em = call.em
  # int8 only when every operand already is: a trained (float) branch, e.g. a
  # lite residual whose output starts at exactly 0 (its calibrated range
  # then says nothing about what it will learn), joins in float.
  if call.policy.int8 and all(x.dtype == np.int8 for x in call.inputs):
    inputs = [em.as_int8(x, call.in_quantization(i))
              for i, x in enumerate(call.inputs)]
    y = em.writer.activation(call.name, call.node.out_shape, np.int8,
                             call.out_quantization())
  else:
    inputs = [em.as_float(x) for x in call.inputs]
    y = em.writer.activation(call.name, call.node.out_shape)
  kind = call.node.activation
  out = inputs[0]
  for i, x in enumerate(inputs[1:]):
    last = i == len(inputs) - 2
    target = y if last else em.writer.activation(
        f"{call.name}/partial", y.shape, y.dtype, y.quantization)
    em.writer.builtin(Op.ADD, [out, x], [target],
                      *opt.add(kind if last else None))
    out = target
  mask = em.relu_mask(y, kind) if kind and call.backward_reaches else None
  needs = [call.need_input_grad(i) for i in range(len(inputs))]

  def backward(g: Grad):
    if mask is not None:
      g = Grad(em.materialize(g) if g.mask is not None else g.tensor, mask)
    return [g if need else None for need in needs]

  return Emitted(y, backward if any(needs) else None)


def relu_rule(call: Call) -> Emitted:
  node = call.node
  if node.fused_into is not None:
    # Applied by the producer (fused activation + its mask).
    return Emitted(call.inputs[0], lambda g: [g])
  kind = relu_kind(call.layer)
  if kind is None:
    raise call.unsupported("only ReLU and ReLU6 without slope or threshold "
                           "are supported by the kernel flavor.")
  em = call.em
  x = call.inputs[0]
  y = _like_input(call, x, node.out_shape)
  em.writer.builtin(Op.RELU6 if kind == "relu6" else Op.RELU, [x], [y])
  mask = em.relu_mask(y, kind) if call.backward_reaches else None

  def backward(g: Grad):
    if g.deferred is not None:
      # A 1x1 conv's input gradient left to the producer's fused op
      # (block_update): this ReLU's mask goes along for that op to apply.
      return [block_update.through_relu(g, mask)]
    base = em.materialize(g) if g.mask is not None else g.tensor
    return [Grad(base, mask)]

  return Emitted(y, backward if call.need_input_grad(0) else None)


def _pool(call: Call, x: Tensor, filter_hw, stride_hw, padding: str,
          out_shape) -> Tensor:
  # TFLM's int8 AVERAGE_POOL_2D keeps the input's quantization.
  y = call.em.writer.activation(f"{call.name}/pooled", out_shape, x.dtype,
                                x.quantization)
  call.em.writer.builtin(Op.AVERAGE_POOL_2D, [x], [y],
                         *opt.pool2d(filter_hw, stride_hw, padding))
  return y


def _pool_backward(call: Call, filter_hw, stride_hw, padding: str):
  em = call.em
  if not call.need_input_grad(0):
    return None

  def backward(g: Grad):
    # A pool beside another consumer of its input (a lite residual branch
    # beside its block's main path) adds the gradient that arrived from
    # there in the same op: the fan-out's sum, without an ADD.
    addend = em.take_pending_grad(call.node.input_ids[0],
                                  f"{call.name}/grad_addend")
    name = "grad_input" if addend is None else "grad_sum"
    dx = em.writer.activation(f"{call.name}/{name}", call.node.in_shapes[0])
    em.tl("TL_AVGPOOL_GRAD",
          [em.materialize(g)] + ([addend] if addend is not None else []), [dx],
          filter_h=filter_hw[0], filter_w=filter_hw[1], stride_h=stride_hw[0],
          stride_w=stride_hw[1], padding=_PADDING_CODE[padding])
    return [Grad(dx)]

  return backward


def global_average_pool_rule(call: Call) -> Emitted:
  if getattr(call.layer, "data_format", "channels_last") != "channels_last":
    raise call.unsupported("only data_format='channels_last' is supported.")
  x = call.inputs[0]
  n, h, w, c = call.node.in_shapes[0]
  pooled = _pool(call, x, (h, w), (1, 1), "VALID", [n, 1, 1, c])
  if call.layer.keepdims:
    y = pooled
  else:
    y = _like_input(call, x, [n, c])
    shape = call.em.int32_constant(f"{call.name}/shape", [n, c])
    call.em.writer.builtin(Op.RESHAPE, [pooled, shape], [y],
                           *opt.reshape([n, c]))
  return Emitted(y, _pool_backward(call, (h, w), (1, 1), "VALID"))


def average_pool_rule(call: Call) -> Emitted:
  layer = call.layer
  if getattr(layer, "data_format", "channels_last") != "channels_last":
    raise call.unsupported("only data_format='channels_last' is supported.")
  padding = layer.padding.upper()
  pool, strides = tuple(layer.pool_size), tuple(layer.strides)
  _, h, w, _ = call.node.in_shapes[0]
  window_padding(padding, h, pool[0], strides[0])
  window_padding(padding, w, pool[1], strides[1])
  y = _pool(call, call.inputs[0], pool, strides, padding, call.node.out_shape)
  return Emitted(y, _pool_backward(call, pool, strides, padding))


def bilinear_rule(call: Call) -> Emitted:
  layer = call.layer
  interpolation = getattr(layer, "interpolation", None)
  if interpolation != "bilinear":
    raise call.unsupported(
        f"interpolation '{interpolation}' is not supported (use 'bilinear').")
  if isinstance(layer, keras.layers.Resizing) and layer.crop_to_aspect_ratio:
    raise call.unsupported("crop_to_aspect_ratio=True is not supported.")
  em = call.em
  x = em.as_float(call.inputs[0])
  out = call.node.out_shape
  y = em.writer.activation(call.name, out)
  size = em.int32_constant(f"{call.name}/size", out[1:3])
  # TF2's resize (UpSampling2D, Resizing): half-pixel centres.
  em.writer.builtin(Op.RESIZE_BILINEAR, [x, size], [y],
                    *opt.resize_bilinear(False, True))
  if not call.need_input_grad(0):
    return Emitted(y)

  def backward(g: Grad):
    dx = em.writer.activation(f"{call.name}/grad_input", call.node.in_shapes[0])
    em.tl("TL_RESIZE_BILINEAR_GRAD", [em.materialize(g)], [dx],
          align_corners=False, half_pixel_centers=True)
    return [Grad(dx)]

  return Emitted(y, backward)


def reshape_rule(call: Call) -> Emitted:
  em = call.em
  x = call.inputs[0]
  out = list(call.node.out_shape)
  y = _like_input(call, x, out)
  em.writer.builtin(Op.RESHAPE, [x, em.int32_constant(f"{call.name}/shape",
                                                       out)], [y],
                    *opt.reshape(out))
  in_shape = list(call.node.in_shapes[0])

  def backward(g: Grad):
    dx = em.writer.activation(f"{call.name}/grad_input", in_shape)
    em.writer.builtin(Op.RESHAPE, [g.tensor, em.int32_constant(
        f"{call.name}/grad_shape", in_shape)], [dx], *opt.reshape(in_shape))
    return [Grad(dx, g.mask)]  # same element order: the mask still applies

  return Emitted(y, backward if call.need_input_grad(0) else None)


def zero_padding_rule(call: Call) -> Emitted:
  if getattr(call.layer, "data_format", "channels_last") != "channels_last":
    raise call.unsupported("only data_format='channels_last' is supported.")
  em = call.em
  (top, bottom), (left, right) = call.layer.padding
  x = call.inputs[0]
  y = _like_input(call, x, call.node.out_shape)
  pads = em.int32_constant(f"{call.name}/paddings",
                           [[0, 0], [top, bottom], [left, right], [0, 0]])
  # int8 PAD fills with the zero point, i.e. real 0.
  em.writer.builtin(Op.PAD, [x, pads], [y], *opt.pad())
  in_shape = list(call.node.in_shapes[0])

  def backward(g: Grad):
    dx = em.writer.activation(f"{call.name}/grad_input", in_shape)
    begin = em.int32_constant(f"{call.name}/begin", [0, top, left, 0])
    size = em.int32_constant(f"{call.name}/size", in_shape)
    em.writer.builtin(Op.SLICE, [em.materialize(g), begin, size], [dx])
    return [Grad(dx)]

  return Emitted(y, backward if call.need_input_grad(0) else None)


def identity_rule(call: Call) -> Emitted:
  return Emitted(call.inputs[0], lambda g: [g])


def softmax_rule(call: Call) -> Emitted:
  if not call.node.is_model_output:
    raise call.unsupported("Softmax is supported only as the model's output.")
  call.em.softmax_output = True
  return Emitted(call.inputs[0], lambda g: [g])


register((keras.layers.Add,), add_rule)
register((keras.layers.ReLU, keras.layers.Activation), relu_rule)
register((keras.layers.GlobalAveragePooling2D,), global_average_pool_rule)
register((keras.layers.AveragePooling2D,), average_pool_rule)
register((keras.layers.UpSampling2D, keras.layers.Resizing), bilinear_rule)
register((keras.layers.Flatten, keras.layers.Reshape), reshape_rule)
register((keras.layers.ZeroPadding2D,), zero_padding_rule)
register((keras.layers.Dropout,), identity_rule)
register((keras.layers.Softmax,), softmax_rule)
