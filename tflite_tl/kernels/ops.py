"""Python wrappers of the TF custom ops around the tflm_kernels reference math.

Each function runs the exact C++ arithmetic that the firmware's TFLM kernels
(TL_* custom ops) run, so host results equal device results. Layouts are
TFLite's: activations NHWC, conv filters OHWI, depthwise filters
[1, kh, kw, C*M]. The library is built on first use (`build.build_tf_ops`).
"""
import functools
from typing import NamedTuple, Optional, Sequence, Tuple, Union

from tflite_tl._compat import tf
from tflite_tl.kernels import build

IntPair = Union[int, Sequence[int]]


@functools.lru_cache(maxsize=None)
def load_ops():
  """Loads (building if stale) the custom-op library; returns its module."""
  return tf.load_op_library(str(build.build_tf_ops()))


def _pair(value: IntPair, name: str) -> Tuple[int, int]:
  pair = (value, value) if isinstance(value, int) else tuple(value)
  if len(pair) != 2 or any(int(v) < 1 for v in pair):
    raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
  return int(pair[0]), int(pair[1])


def _padding(padding: str) -> str:
  if padding.upper() not in ("SAME", "VALID"):
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
  return padding.upper()


def _conv_attrs(filter_size, strides, padding):
  fh, fw = _pair(filter_size, "filter_size")
  sh, sw = _pair(strides, "strides")
  return dict(filter_height=fh, filter_width=fw, stride_h=sh, stride_w=sw,
              padding=_padding(padding))


def _input_quant(inputs, input_quantization):
  """Attributes for a float input, or an int8 input with (scale, zero_point)."""
  inputs = tf.convert_to_tensor(inputs)
  if inputs.dtype == tf.int8:
    if input_quantization is None:
      raise ValueError("an int8 input needs input_quantization=(scale, zero_point)")
    scale, zero_point = input_quantization
    if not scale > 0:
      raise ValueError(f"input scale must be positive, got {scale!r}")
    return inputs, dict(input_scale=float(scale), input_zero_point=int(zero_point))
  if inputs.dtype != tf.float32:
    raise ValueError(f"inputs must be float32 or int8, got {inputs.dtype.name}")
  if input_quantization is not None:
    raise ValueError("input_quantization applies to int8 inputs only")
  return inputs, {}


def _groups(groups: int) -> int:
  if int(groups) != groups or groups < 1:
    raise ValueError(f"groups must be a positive int, got {groups!r}")
  return int(groups)


def conv_weight_grad_sparse(inputs, grad_output, channels, filter_size: IntPair,
                            strides: IntPair = 1, padding: str = "SAME",
                            input_quantization=None, groups: int = 1):
  """Conv2D weight gradient of the given output channels, [K, kh, kw, C_in / groups].

  `inputs` is the layer input: float32, or the int8 tensor saved by a
  quantized forward pass together with input_quantization=(scale, zero_point).
  `groups` > 1 is a grouped convolution (TinyTL's lite residual uses 2).
  """
  inputs, quant = _input_quant(inputs, input_quantization)
  return load_ops().tl_conv_weight_grad_sparse(
      inputs, grad_output, tf.cast(channels, tf.int32),
      **_conv_attrs(filter_size, strides, padding), **quant, groups=_groups(groups))


def depthwise_weight_grad(inputs, grad_output, filter_size: IntPair,
                          strides: IntPair = 1, padding: str = "SAME",
                          input_quantization=None):
  """DepthwiseConv2D weight gradient, [1, kh, kw, C_in * multiplier].

  `inputs` may be int8 with input_quantization, as in conv_weight_grad_sparse.
  """
  inputs, quant = _input_quant(inputs, input_quantization)
  return load_ops().tl_depthwise_weight_grad(
      inputs, grad_output, **_conv_attrs(filter_size, strides, padding), **quant)


def _optional(value, dtype):
  """(tensor, present): an absent optional input is an empty tensor."""
  if value is None:
    return tf.zeros([0], dtype), False
  return tf.convert_to_tensor(value, dtype), True


def conv_input_grad(grad_output, filter_int8, scales, input_size: IntPair = 1,
                    strides: IntPair = 1, padding: str = "SAME", groups: int = 1,
                    mask=None):
  """Conv2D input gradient through int8 OHWI weights with per-channel scales.

  With `groups` > 1 the filter is [out_c, kh, kw, in_c / groups]. Rank-2
  grad_output [N, out_c] and filter [out_c, in_c] are the FULLY_CONNECTED
  form (input_size 1). `mask` is the packed 1-bit mask of the layer's output
  activation (`relu_mask`), applied to grad_output on the fly.
  """
  ih, iw = _pair(input_size, "input_size")
  shape = tuple(filter_int8.shape)
  fh, fw = (1, 1) if len(shape) == 2 else (int(shape[1]), int(shape[2]))
  mask, has_mask = _optional(mask, tf.uint8)
  return load_ops().tl_conv_input_grad(
      grad_output, filter_int8, scales, mask, input_height=ih, input_width=iw,
      **_conv_attrs((fh, fw), strides, padding), groups=_groups(groups),
      has_mask=has_mask)


def depthwise_input_grad(grad_output, filter_int8, scales, input_size: IntPair,
                         depth_multiplier: int = 1, strides: IntPair = 1,
                         padding: str = "SAME", mask=None):
  """DepthwiseConv2D input gradient through int8 [1, kh, kw, C*M] weights.

  `mask` as in conv_input_grad.
  """
  ih, iw = _pair(input_size, "input_size")
  fh, fw = int(filter_int8.shape[1]), int(filter_int8.shape[2])
  mask, has_mask = _optional(mask, tf.uint8)
  return load_ops().tl_depthwise_input_grad(
      grad_output, filter_int8, scales, mask, input_height=ih, input_width=iw,
      depth_multiplier=int(depth_multiplier), **_conv_attrs((fh, fw), strides, padding),
      has_mask=has_mask)


def inverted_residual_input_grad(grad_output, project, depthwise, expand=None, *,
                                 input_size: IntPair, strides: IntPair = 1,
                                 padding: str = "SAME", grad_output_mask=None,
                                 depthwise_mask=None, expand_mask=None):
  """TL_INVERTED_RESIDUAL_INPUT_GRAD: the input gradient through a frozen int8
  block [1x1 expand conv] -> depthwise -> 1x1 project from the project output's
  gradient, streamed by rows; bit-identical to conv_input_grad (project, with
  grad_output_mask) -> depthwise_input_grad (depthwise_mask) -> conv_input_grad
  (expand, expand_mask).

  project, depthwise, expand: (int8 filter, per-channel float scales) with
  filters [Cout, 1, 1, E], [1, kh, kw, E], [E, 1, 1, Cin]; expand None for a
  block without expand conv. Masks: packed 1-bit masks (`relu_mask`) or None.
  """
  ih, iw = _pair(input_size, "input_size")
  sh, sw = _pair(strides, "strides")
  if expand is None and expand_mask is not None:
    raise ValueError("expand_mask needs an expand conv (expand=(filter, scales))")
  ef, es = expand if expand is not None else (tf.zeros([0], tf.int8),
                                             tf.zeros([0], tf.float32))
  masks = [_optional(m, tf.uint8)[0]
           for m in (grad_output_mask, depthwise_mask, expand_mask)]
  return load_ops().tl_inverted_residual_input_grad(
      tf.convert_to_tensor(grad_output, tf.float32), masks[0],
      tf.convert_to_tensor(project[0], tf.int8), tf.convert_to_tensor(project[1], tf.float32),
      tf.convert_to_tensor(depthwise[0], tf.int8),
      tf.convert_to_tensor(depthwise[1], tf.float32), masks[1],
      tf.convert_to_tensor(ef, tf.int8), tf.convert_to_tensor(es, tf.float32), masks[2],
      input_height=ih, input_width=iw, stride_h=sh, stride_w=sw, padding=_padding(padding))


_ACTIVATIONS = {None: 0, "linear": 0, "relu": 1, "relu6": 2}


def depthwise_conv(x, filter_, bias=None, strides: IntPair = 1, padding: str = "SAME",
                   activation: Optional[str] = None):
  """TL_DEPTHWISE_CONV: float depthwise convolution forward, [1, kh, kw, C*M]
  filter, optional bias, fused activation (None, "relu", "relu6").

  Returns (output, mask): mask is the packed 1-bit mask of the activation's
  linear range on output (as relu_mask computes it; all zero without an
  activation).
  """
  if activation not in _ACTIVATIONS:
    raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
  sh, sw = _pair(strides, "strides")
  bias, has_bias = _optional(bias, tf.float32)
  return load_ops().tl_depthwise_conv(
      tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(filter_, tf.float32), bias,
      has_bias=has_bias, activation=_ACTIVATIONS[activation], stride_h=sh, stride_w=sw,
      padding=_padding(padding))


def inverted_residual(x, expand, depthwise, project, *, input_quantization,
                      expand_quantization=None, depthwise_quantization,
                      output_quantization, strides: IntPair = 1, padding: str = "SAME",
                      expand_strides: IntPair = 1, expand_padding: str = "SAME",
                      activation: Optional[str] = "relu6", masks: bool = False):
  """TL_INVERTED_RESIDUAL: an int8 block [expand conv] -> depthwise conv ->
  linear 1x1 project conv, with TFLM's integer arithmetic.

  ``expand`` (None: no expand conv), ``depthwise`` and ``project`` are
  (int8 filter, int32 bias, float32 per-channel scales) with filters
  [E, kh_e, kw_e, Cin] (a one-group conv with ``expand_strides`` and
  ``expand_padding``; MobileNetV2's is 1x1, stride 1), [1, kh, kw, E] and
  [Cout, 1, 1, E]; ``strides`` and ``padding`` are the depthwise's, on the
  expanded map (the expand conv's output); the quantizations are
  (scale, zero_point) of the input, the expanded map, the depthwise output and
  the output; ``activation`` (None, "relu", "relu6") follows the expand and
  the depthwise conv. With ``masks`` returns (output, expand_mask,
  depthwise_mask): the packed 1-bit masks of the activations' linear ranges
  on the int8 expanded map ([0] without an expand conv) and the depthwise
  output (all zero without an activation), as TL_RELU_MASK packs them.
  """
  if activation not in _ACTIVATIONS:
    raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
  if (expand is None) != (expand_quantization is None):
    raise ValueError("expand and expand_quantization are both given or both None")
  sh, sw = _pair(strides, "strides")
  esh, esw = _pair(expand_strides, "expand_strides")
  empty = (tf.zeros([0], tf.int8), tf.zeros([0], tf.int32), tf.zeros([0], tf.float32))

  def stage(parts):
    f, b, sc = parts
    return (tf.convert_to_tensor(f, tf.int8), tf.convert_to_tensor(b, tf.int32),
            tf.convert_to_tensor(sc, tf.float32))

  eq = expand_quantization or (0.0, 0)
  code = _ACTIVATIONS[activation]
  out = load_ops().tl_inverted_residual(
      tf.convert_to_tensor(x, tf.int8), *(stage(expand) if expand is not None else empty),
      *stage(depthwise), *stage(project), has_expand=expand is not None,
      input_scale=float(input_quantization[0]),
      input_zero_point=int(input_quantization[1]),
      expand_scale=float(eq[0]), expand_zero_point=int(eq[1]),
      expand_activation=code, depthwise_activation=code,
      depthwise_scale=float(depthwise_quantization[0]),
      depthwise_zero_point=int(depthwise_quantization[1]),
      output_scale=float(output_quantization[0]),
      output_zero_point=int(output_quantization[1]),
      stride_h=sh, stride_w=sw, padding=_padding(padding), expand_stride_h=esh,
      expand_stride_w=esw, expand_padding=_padding(expand_padding))
  return tuple(out) if masks else out[0]


def conv(x, filter_, bias=None, strides: IntPair = 1, padding: str = "SAME",
         activation: Optional[str] = None, standardize_epsilon: Optional[float] = None):
  """TL_CONV: float convolution forward, OHWI [Co, kh, kw, Ci / groups] filter
  (grouped when Ci / groups < the input's channels), optional bias, fused
  activation (None, "relu", "relu6"); with standardize_epsilon, of the
  weight-standardised filter (TL_WEIGHT_STANDARDIZE with that epsilon).

  Returns (output, mask, filter_hat): mask as in depthwise_conv; filter_hat
  the standardised filter the convolution read (empty without
  standardize_epsilon).

  Float only: the TFLM op's int8 form is TFLM's int8 CONV_2D value for value
  (tests/test_tflm_int8_forward_convs.py), so the TF reference of an int8
  step computes that arithmetic itself and needs no adapter.
  """
  if activation not in _ACTIVATIONS:
    raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
  sh, sw = _pair(strides, "strides")
  bias, has_bias = _optional(bias, tf.float32)
  standardize = standardize_epsilon is not None
  return load_ops().tl_conv(
      tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(filter_, tf.float32), bias,
      has_bias=has_bias, activation=_ACTIVATIONS[activation], standardize=standardize,
      epsilon=float(standardize_epsilon) if standardize else 0.0, stride_h=sh, stride_w=sw,
      padding=_padding(padding))


class UpdatedParameters(NamedTuple):
  """Parameters after TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE; None if not given."""
  weights: Optional[tf.Tensor]
  weights_q: Optional[tf.Tensor]
  bias: Optional[tf.Tensor]
  bias_q: Optional[tf.Tensor]


def _update(op, grad_output, learning_rate, inputs, mask, channels, weights, weights_q,
            weights_q_scales, bias, bias_q, bias_q_scales, strides, padding, qas,
            input_quantization, **extra):
  sh, sw = _pair(strides, "strides")
  has_input = inputs is not None
  if inputs is None:
    if input_quantization is not None:
      raise ValueError("input_quantization without inputs")
    inputs, quant = tf.zeros([0], tf.float32), {}
  else:
    inputs, quant = _input_quant(inputs, input_quantization)
  if (weights_q is None) != (weights_q_scales is None):
    raise ValueError("weights_q and weights_q_scales go together")
  if (bias_q is None) != (bias_q_scales is None):
    raise ValueError("bias_q and bias_q_scales go together")
  tensors = {}
  for name, value, dtype in [("mask", mask, tf.uint8), ("channels", channels, tf.int32),
                             ("filter", weights, tf.float32),
                             ("filter_q", weights_q, tf.int8),
                             ("filter_q_scales", weights_q_scales, tf.float32),
                             ("bias", bias, tf.float32), ("bias_q", bias_q, tf.int32),
                             ("bias_q_scales", bias_q_scales, tf.float32)]:
    tensors[name], tensors["has_" + name] = _optional(value, dtype)
  new = op(grad_output, tensors["mask"], inputs, tensors["channels"], tensors["filter"],
           tensors["filter_q"], tensors["filter_q_scales"], tensors["bias"],
           tensors["bias_q"], tensors["bias_q_scales"], has_mask=tensors["has_mask"],
           has_input=has_input,
           has_channels=tensors["has_channels"], has_filter=tensors["has_filter"],
           has_filter_q=tensors["has_filter_q"], has_bias=tensors["has_bias"],
           has_bias_q=tensors["has_bias_q"], stride_h=sh, stride_w=sw,
           padding=_padding(padding), learning_rate=float(learning_rate), qas=bool(qas),
           **quant, **extra)
  present = [weights is not None, weights_q is not None, bias is not None, bias_q is not None]
  return UpdatedParameters(*[t if p else None for t, p in zip(new, present)])


def conv_update(grad_output, learning_rate: float, *, inputs=None, mask=None,
                channels=None, weights=None, weights_q=None, weights_q_scales=None,
                bias=None, bias_q=None, bias_q_scales=None, strides: IntPair = 1,
                padding: str = "SAME", channel_axis: int = 0, qas: bool = True,
                input_quantization=None) -> UpdatedParameters:
  """One SGD step of a Conv2D / fully connected layer's trained parameters
  (TL_CONV_UPDATE); returns the updated tensors.

  Args:
    grad_output: [N, Ho, Wo, Co] ([N, Co] for a fully connected layer).
    learning_rate: SGD step size.
    inputs: the saved layer input (float32, or int8 with input_quantization),
      needed iff weights are trained; with channel_axis 1 it may hold only the
      chosen input channels, in `channels` order.
    mask: packed 1-bit mask of the layer's output activation.
    channels: trained output (channel_axis 0) or input (1) channels; None: all.
    weights: the float filter [Co, kh, kw, Ci / groups] (or [Co, Ci]); with
      weights_q, the float master of the chosen channels instead
      ([K, kh, kw, Ci / g] on axis 0, [Co, kh, kw, K] on axis 1).
    weights_q, weights_q_scales: the int8 forward's per-channel filter and
      its scales; re-quantized from the master.
    bias, bias_q, bias_q_scales: float bias [Co]; the int8 forward's int32
      bias and its scales, rewritten from the float bias.
    qas: False scales the gradients of parameters with integer copies by
      scale^2 (SGD on the integers without quantization-aware scaling).
  """
  if channel_axis not in (0, 1):
    raise ValueError(f"channel_axis must be 0 or 1, got {channel_axis!r}")
  return _update(load_ops().tl_conv_update, grad_output, learning_rate, inputs, mask,
                 channels, weights, weights_q, weights_q_scales, bias, bias_q,
                 bias_q_scales, strides, padding, qas, input_quantization,
                 channel_axis=int(channel_axis))


def ws_conv_update(grad_output, learning_rate: float, epsilon: float, *, inputs, weights,
                   mask=None, bias=None, strides: IntPair = 1, padding: str = "SAME",
                   input_grad: bool = False):
  """TL_WS_CONV_UPDATE: one SGD step of a weight-standardised conv's raw OHWI
  filter `weights` (the forward convolves `inputs` with
  standardize_kernel(weights, epsilon)) and of its optional bias; `mask` as in
  conv_update. Returns (new_weights, new_bias or None), and with `input_grad`
  also the layer's input gradient (through the filter standardised from
  `weights`, before the step), as the TFLM op computes it when its input 8 is
  the raw filter.
  """
  sh, sw = _pair(strides, "strides")
  mask, has_mask = _optional(mask, tf.uint8)
  bias_t, has_bias = _optional(bias, tf.float32)
  new_weights, new_bias, grad_input = load_ops().tl_ws_conv_update(
      tf.convert_to_tensor(grad_output, tf.float32), mask,
      tf.convert_to_tensor(inputs, tf.float32), tf.convert_to_tensor(weights, tf.float32),
      bias_t, has_mask=has_mask, has_bias=has_bias, input_grad=bool(input_grad),
      epsilon=float(epsilon), learning_rate=float(learning_rate), stride_h=sh,
      stride_w=sw, padding=_padding(padding))
  if input_grad:
    return new_weights, (new_bias if has_bias else None), grad_input
  return new_weights, (new_bias if has_bias else None)


def depthwise_update(grad_output, learning_rate: float, *, inputs=None, mask=None,
                     channels=None, weights=None, weights_q=None, weights_q_scales=None,
                     bias=None, bias_q=None, bias_q_scales=None, strides: IntPair = 1,
                     padding: str = "SAME", qas: bool = True,
                     input_quantization=None) -> UpdatedParameters:
  """TL_DEPTHWISE_UPDATE: conv_update for DepthwiseConv2D with depth multiplier 1.

  weights are [1, kh, kw, C] (or the master [1, kh, kw, K] with weights_q);
  channels index C; inputs may hold only the chosen channels.
  """
  return _update(load_ops().tl_depthwise_update, grad_output, learning_rate, inputs, mask,
                 channels, weights, weights_q, weights_q_scales, bias, bias_q,
                 bias_q_scales, strides, padding, qas, input_quantization)


def bias_grad(grad_output):
  """Sum of grad_output over every axis but the last."""
  return load_ops().tl_bias_grad(grad_output)


def bias_grad_sgd(grad_output, bias, learning_rate: float):
  """Fused bias gradient + SGD step; returns (new_bias, grad_bias)."""
  return load_ops().tl_bias_grad_sgd(grad_output, bias, learning_rate=float(learning_rate))


def relu_mask(x, relu6: bool = False):
  """1-bit packed mask (LSB first) of where ReLU / ReLU6 passes gradients."""
  return load_ops().tl_relu_mask(x, relu6=bool(relu6))


def masked_grad(grad_output, mask):
  """grad_output where the packed mask is set, 0 elsewhere."""
  return load_ops().tl_masked_grad(grad_output, mask)


def sgd_update(weights, grad, learning_rate: float):
  """weights - learning_rate * grad; a NaN or inf grad element leaves its
  weight as it was."""
  return load_ops().tl_sgd_update(weights, grad, learning_rate=float(learning_rate))


def sgd_momentum_update(weights, velocity, grad, learning_rate: float, momentum: float):
  """Keras SGD with momentum; returns (new_weights, new_velocity)."""
  return load_ops().tl_sgd_momentum_update(
      weights, velocity, grad, learning_rate=float(learning_rate), momentum=float(momentum))


def softmax_xent(logits, labels, label_smoothing: float = 0.0):
  """TL_SOFTMAX_XENT: (mean loss [1], grad_logits [N, K]).

  Targets are (1 - label_smoothing) * onehot(labels) + label_smoothing / K, as
  Keras' CategoricalCrossentropy; a non-finite logit or loss zeroes the
  gradient and the loss carries the non-finite value.
  """
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
  return load_ops().tl_softmax_xent(logits, tf.cast(labels, tf.int32),
                                    label_smoothing=float(label_smoothing))


def avgpool_grad(grad_output, input_size: IntPair, filter_size: IntPair,
                 strides: Optional[IntPair] = None, padding: str = "VALID", addend=None):
  """TL_AVGPOOL_GRAD: gradient of AVERAGE_POOL_2D w.r.t. its [N, H, W, C] input.

  strides defaults to the window (non-overlapping pools); a [N, C]
  grad_output with filter_size = input_size is global average pooling's.
  `addend` (the input's shape): another gradient of the input, added to the
  result as ADD would add it.
  """
  ih, iw = _pair(input_size, "input_size")
  fh, fw = _pair(filter_size, "filter_size")
  sh, sw = _pair(strides if strides is not None else (fh, fw), "strides")
  addend, has_addend = _optional(addend, tf.float32)
  return load_ops().tl_avg_pool_grad(grad_output, addend, has_addend=has_addend,
                                     input_height=ih, input_width=iw,
                                     filter_height=fh, filter_width=fw, stride_h=sh,
                                     stride_w=sw, padding=_padding(padding))


def resize_bilinear_grad(grad_output, input_size: IntPair, align_corners: bool = False,
                         half_pixel_centers: bool = True):
  """TL_RESIZE_BILINEAR_GRAD: adjoint of TFLite's float RESIZE_BILINEAR.

  The defaults are TF2's tf.image.resize / Keras UpSampling2D (half-pixel
  centers).
  """
  ih, iw = _pair(input_size, "input_size")
  if align_corners and half_pixel_centers:
    raise ValueError("align_corners and half_pixel_centers cannot both be true")
  return load_ops().tl_resize_bilinear_grad(grad_output, input_height=ih, input_width=iw,
                                            align_corners=bool(align_corners),
                                            half_pixel_centers=bool(half_pixel_centers))


def group_norm(x, groups: int, epsilon: float = 1e-3, gamma=None, beta=None):
  """TL_GROUPNORM: tf-keras GroupNormalization of NHWC x (gamma / beta None:
  scale=False / center=False)."""
  gamma, has_gamma = _optional(gamma, tf.float32)
  beta, has_beta = _optional(beta, tf.float32)
  return load_ops().tl_group_norm(x, gamma, beta, groups=_groups(groups),
                                  epsilon=float(epsilon), has_gamma=has_gamma,
                                  has_beta=has_beta)


class NormGradResult(NamedTuple):
  """TL_GROUPNORM_GRAD / TL_BATCHNORM_GRAD results: the input gradient (from
  gamma before the step) and the parameters after one SGD step (None if not
  given; an untrained gamma comes back unchanged)."""
  grad_input: tf.Tensor
  gamma: Optional[tf.Tensor]
  beta: Optional[tf.Tensor]


def _norm_grad_attrs(mask, gamma, beta, train_gamma, learning_rate):
  if train_gamma and gamma is None:
    raise ValueError("train_gamma needs gamma")
  mask, has_mask = _optional(mask, tf.uint8)
  gamma_t, has_gamma = _optional(gamma, tf.float32)
  beta_t, has_beta = _optional(beta, tf.float32)
  attrs = dict(learning_rate=float(learning_rate), has_mask=has_mask, has_gamma=has_gamma,
               train_gamma=bool(train_gamma), train_beta=has_beta)
  return mask, gamma_t, beta_t, attrs


def _norm_result(outputs, gamma, beta):
  grad_input, new_gamma, new_beta = outputs
  return NormGradResult(grad_input, new_gamma if gamma is not None else None,
                        new_beta if beta is not None else None)


def group_norm_grad(grad_output, x, groups: int, epsilon: float = 1e-3,
                    learning_rate: float = 0.0, *, mask=None, gamma=None, beta=None,
                    train_gamma: bool = False) -> NormGradResult:
  """TL_GROUPNORM_GRAD: backward of group_norm from the saved input x.

  gamma is read for dx and, with train_gamma, stepped; a given beta is always
  trained (it is only an input to be trained). mask is the packed 1-bit mask
  of the layer's output activation.
  """
  mask, gamma_t, beta_t, attrs = _norm_grad_attrs(mask, gamma, beta, train_gamma,
                                                  learning_rate)
  outputs = load_ops().tl_group_norm_grad(grad_output, mask, x, gamma_t, beta_t,
                                          groups=_groups(groups), epsilon=float(epsilon),
                                          **attrs)
  return _norm_result(outputs, gamma, beta)


def batch_norm_grad(grad_output, inv_std, learning_rate: float = 0.0, *, mask=None,
                    x=None, mean=None, gamma=None, beta=None, train_gamma: bool = False,
                    input_quantization=None) -> NormGradResult:
  """TL_BATCHNORM_GRAD: backward of a batch norm with frozen statistics.

  inv_std = 1 / sqrt(moving_var + eps). A trained gamma needs the saved input
  x (float32, or int8 with input_quantization) and the mean.
  """
  if train_gamma and (x is None or mean is None):
    raise ValueError("train_gamma needs the saved input x and the mean")
  if x is None:
    x, quant = tf.zeros([0], tf.float32), {}
  else:
    x, quant = _input_quant(x, input_quantization)
  mean, _ = _optional(mean, tf.float32)
  mask, gamma_t, beta_t, attrs = _norm_grad_attrs(mask, gamma, beta, train_gamma,
                                                  learning_rate)
  outputs = load_ops().tl_batch_norm_grad(grad_output, mask, x, mean, inv_std, gamma_t,
                                          beta_t, **quant, **attrs)
  return _norm_result(outputs, gamma, beta)


def weight_standardize(w, epsilon: float = 1e-5):
  """TL_WEIGHT_STANDARDIZE: an OHWI filter [Co, kh, kw, Ci] (or [Co, Ci])
  standardised per output channel, as tflite_tl.layers.standardize_kernel."""
  return load_ops().tl_weight_standardize(w, epsilon=float(epsilon))


def weight_standardize_grad(w, grad_w_hat, epsilon: float = 1e-5):
  """TL_WEIGHT_STANDARDIZE_GRAD: dL/dw of the raw OHWI filter from
  dL/dw_hat."""
  return load_ops().tl_weight_standardize_grad(w, grad_w_hat, epsilon=float(epsilon))
