"""Channel-sparse convs (TinyTrain, sparse update) in the kernel flavor.

A :class:`ChannelSparseConv2D` / :class:`ChannelSparseDepthwiseConv2D`
trains the kernel slices of ``trained_channels`` only. Here:

- float graphs: the forward reads one float variable, the full effective
  kernel (TFLite layout); TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE rewrite only
  the chosen slices, from gradients computed only for them;
- int8 graphs: the forward stays int8 (TFLM's kernels read an int8 variable
  kernel); a float master holds the chosen slices and the update re-quantizes
  them with the layer's fixed per-channel scales (quantization-aware
  scaling: the int8 kernel follows float SGD of the master);
- the backward pass keeps only what the chosen channels need: for input
  channels (and depthwise channels) a GATHER of those channels of the layer's
  input right after the forward consumed it, in the graph's precision (int8
  in an int8 graph); for output channels the whole input.
The channel indices are an int32 tensor read at run time by GATHER and the
update kernel, so a variable tensor can hold them (re-selection on a board).
"""
import numpy as np

from tflite_tl.layers import channel_sparse as cs
from tflite_tl.lower.tl import block_update
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.emitter import DERIVED
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.emitter import Op
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.rule_base import Call
from tflite_tl.lower.tl.rule_base import Emitted
from tflite_tl.lower.tl.rule_base import register
from tflite_tl.lower.tl.rule_base import square
from tflite_tl.lower.tl.rules_conv import TO_KERAS_4D
from tflite_tl.lower.tl.rules_conv import tl_forward

_PADDING_CODE = {"VALID": 0, "SAME": 1}
_TO_TFLITE_4D = (3, 0, 1, 2)
# Keras kernel axis of the channels -> axis in TFLite's layout.
_TFLITE_AXIS = {(False, cs.INPUT): 3, (False, cs.OUTPUT): 0,
                (True, cs.CHANNELS): 3}


def effective_kernel(call: Call) -> np.ndarray:
  """The Keras-layout kernel the layer convolves with, from its weights."""
  layer = call.layer
  kernel = call.weight(cs.FULL_KERNEL).copy()
  trained = call.weight(cs.TRAINED_KERNEL)
  axis = cs.KERNEL_AXIS[layer.channel_axis]
  index = [slice(None)] * 4
  index[axis] = list(layer.trained_channels)
  kernel[tuple(index)] = trained
  return kernel


def sparse_rule(call: Call) -> Emitted:
  layer = call.layer
  depthwise = isinstance(layer, cs.ChannelSparseDepthwiseConv2D)
  strides = square(call, layer.strides, "strides")
  padding = layer.padding.upper()
  act = getattr(layer.activation, "__name__", "linear")
  if act not in ("linear", "relu", "relu6"):
    raise call.unsupported(f"activation '{act}' is not supported.")
  em = call.em
  channels = list(layer.trained_channels)
  axis = _TFLITE_AXIS[(depthwise, layer.channel_axis)]
  tflite_kernel = np.transpose(effective_kernel(call), _TO_TFLITE_4D)
  trained_tflite = np.transpose(call.weight(cs.TRAINED_KERNEL), _TO_TFLITE_4D)
  trains_kernel = call.trained(cs.TRAINED_KERNEL)
  name = call.param_name(cs.TRAINED_KERNEL)
  channel_t = em.int32_constant(f"{call.name}/trained_channels", channels)
  x = call.inputs[0]
  filter_var = filter_q_var = bias_var = bias_q_var = None
  scale_axis = 3 if depthwise else 0
  if call.policy.int8:
    x_q = call.in_quantization(0)
    x_in = em.as_int8(x, x_q)
    lq = quant.layer_quantization(
        tflite_kernel, scale_axis, x_q.scale[0],
        call.weight("bias") if call.has_weight("bias") else None)
    filter_quantization = Quantization.per_channel(lq.filter_scales,
                                                   scale_axis)
    if trains_kernel:
      filter_var = em.parameter(name, trained_tflite, to_keras=TO_KERAS_4D)
      forward_filter = filter_q_var = em.parameter(
          f"{name}:int8", lq.filter_q, dtype=np.int8,
          quantization=filter_quantization, role=DERIVED, parameter=name,
          channels=channels, channel_axis=axis)
    else:
      forward_filter = em.writer.constant(f"{call.name}/kernel", lq.filter_q,
                                          quantization=filter_quantization)
    bias_quantization = Quantization.per_channel(lq.bias_scales, 0)
    if call.has_weight("bias") and call.trained("bias"):
      bname = call.param_name("bias")
      bias = bias_var = em.parameter(bname, call.weight("bias"))
      if not call.policy.qas:  # as rules_conv._int8_params
        bias = bias_q_var = em.parameter(
            f"{bname}:int32", lq.bias_q, dtype=np.int32,
            quantization=bias_quantization, role=DERIVED, parameter=bname)
    else:
      bias = em.writer.constant(f"{call.name}/bias:int32", lq.bias_q,
                                quantization=bias_quantization)
    y = em.writer.activation(call.name, call.node.out_shape, np.int8,
                             call.out_quantization())
  else:
    x_in = em.as_float(x)
    if trains_kernel:
      forward_filter = filter_var = em.parameter(
          name, tflite_kernel, to_keras=TO_KERAS_4D, channels=channels,
          channel_axis=axis)
    else:
      forward_filter = em.writer.constant(f"{call.name}/kernel",
                                          tflite_kernel)
    bias = None
    if call.has_weight("bias"):
      if call.trained("bias"):
        bias = bias_var = em.parameter(call.param_name("bias"),
                                       call.weight("bias"))
      else:
        bias = em.writer.constant(f"{call.name}/bias", call.weight("bias"))
    y = em.writer.activation(call.name, call.node.out_shape)
  fused = call.node.activation
  geometry = {"padding": _PADDING_CODE[padding], "stride_h": strides,
              "stride_w": strides}
  if call.policy.training or call.policy.int8:
    # As rules_conv: TL_CONV / TL_DEPTHWISE_CONV (float or int8) keep no
    # per-channel persistent buffers and write the mask themselves.
    mask = tl_forward(call, "TL_DEPTHWISE_CONV" if depthwise else "TL_CONV",
                      [x_in, forward_filter, bias], y, geometry)
  else:
    if depthwise:
      em.writer.builtin(Op.DEPTHWISE_CONV_2D, [x_in, forward_filter, bias],
                        [y], *opt.depthwise_conv2d(strides, padding, fused))
    else:
      em.writer.builtin(Op.CONV_2D, [x_in, forward_filter, bias], [y],
                        *opt.conv2d(strides, padding, fused))
    mask = None
  saved = None
  gathered = depthwise or layer.channel_axis == cs.INPUT
  if trains_kernel and call.policy.training:
    if gathered:
      # Only the chosen channels of the input stay alive for the backward.
      n, h, w, _ = call.node.in_shapes[0]
      saved = em.writer.activation(f"{call.name}/saved_input",
                                   [n, h, w, len(channels)], x_in.dtype,
                                   x_in.quantization)
      em.writer.builtin(Op.GATHER, [x_in, channel_t], [saved],
                        *opt.gather(3))
    else:
      saved = x_in
  need_dx = call.need_input_grad(0)
  trains = trains_kernel or bias_var is not None
  if not call.policy.training or not (need_dx or trains):
    return Emitted(y)
  # Between a frozen expand and a frozen project conv (int8): the block's
  # whole backward as one TL_INVERTED_RESIDUAL_UPDATE (block_update).
  expand = (block_update.take_expand(call)
            if depthwise and trains_kernel and call.policy.int8 and need_dx
            else None)
  # Where the backward stops at this depthwise (the earliest trained layer),
  # the same op without an input gradient: the project's input gradient (an
  # expanded-width float map) is then never a tensor either.
  stops_here = (depthwise and trains_kernel and call.policy.int8
                and not need_dx and block_update.take_project_only(call))
  # The project conv of such a block: its input gradient and its update go
  # into that depthwise's op (block_update).
  project = None
  if not depthwise:
    project = block_update.defer_trained_project(
        call, forward_filter, block_update.ProjectUpdate(
            saved, channel_t if trains_kernel else None, filter_var, bias_var,
            bias_q_var, 1 if layer.channel_axis == cs.INPUT else 0))

  def backward(g: Grad):
    if project is not None:
      return [Grad(g.tensor, g.mask, deferred=project)]
    if ((expand is not None or stops_here)
        and isinstance(g.deferred, block_update.Project)):
      return block_update.emit(
          em, g, expand, depthwise_filter=forward_filter, depthwise_mask=mask,
          saved_input=saved, channels=channel_t, filter_var=filter_var,
          bias_var=bias_var, bias_q_var=bias_q_var,
          learning_rate=call.policy.learning_rate, qas=call.policy.qas,
          geometry=geometry)
    m = mask if mask is not None else g.mask
    dx = None
    if need_dx:
      dx = em.writer.activation(f"{call.name}/grad_input",
                                call.node.in_shapes[0])
    if not trains:
      em.tl("TL_DEPTHWISE_INPUT_GRAD" if depthwise else "TL_CONV_INPUT_GRAD",
            [g.tensor, forward_filter, m], [dx], **geometry)
      return [Grad(dx)]
    # One op: the input gradient through the forward's filter (before the
    # step re-quantizes it), then the in-place update.
    inputs = [g.tensor, m, saved, channel_t if trains_kernel else None,
              filter_var, filter_q_var, bias_var, bias_q_var]
    if dx is not None:
      inputs.append(forward_filter)
    outputs = [dx] if dx is not None else []
    if depthwise:
      em.tl("TL_DEPTHWISE_UPDATE", inputs, outputs,
            learning_rate=call.policy.learning_rate, qas=call.policy.qas,
            **geometry)
    else:
      em.tl("TL_CONV_UPDATE", inputs, outputs,
            learning_rate=call.policy.learning_rate, qas=call.policy.qas,
            channel_axis=1 if layer.channel_axis == cs.INPUT else 0,
            **geometry)
    return [Grad(dx) if dx is not None else None]

  return Emitted(y, backward)


register((cs.ChannelSparseConv2D, cs.ChannelSparseDepthwiseConv2D),
         sparse_rule)
