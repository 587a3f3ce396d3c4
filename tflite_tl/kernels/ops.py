"""Python wrappers of the TF custom ops around the tflm_kernels reference math.

Each function runs the exact C++ arithmetic that the firmware's TFLM kernels
(TL_* custom ops) run, so host results equal device results. Layouts are
TFLite's: activations NHWC, conv filters OHWI, depthwise filters
[1, kh, kw, C*M]. The library is built on first use (`build.build_tf_ops`).
"""
import functools
from typing import Sequence, Tuple, Union

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


def conv_input_grad(grad_output, filter_int8, scales, input_size: IntPair,
                    strides: IntPair = 1, padding: str = "SAME", groups: int = 1):
  """Conv2D input gradient through int8 OHWI weights with per-channel scales.

  With `groups` > 1 the filter is [out_c, kh, kw, in_c / groups].
  """
  ih, iw = _pair(input_size, "input_size")
  fh, fw = int(filter_int8.shape[1]), int(filter_int8.shape[2])
  return load_ops().tl_conv_input_grad(
      grad_output, filter_int8, scales, input_height=ih, input_width=iw,
      **_conv_attrs((fh, fw), strides, padding), groups=_groups(groups))


def depthwise_input_grad(grad_output, filter_int8, scales, input_size: IntPair,
                         depth_multiplier: int = 1, strides: IntPair = 1,
                         padding: str = "SAME"):
  """DepthwiseConv2D input gradient through int8 [1, kh, kw, C*M] weights."""
  ih, iw = _pair(input_size, "input_size")
  fh, fw = int(filter_int8.shape[1]), int(filter_int8.shape[2])
  return load_ops().tl_depthwise_input_grad(
      grad_output, filter_int8, scales, input_height=ih, input_width=iw,
      depth_multiplier=int(depth_multiplier), **_conv_attrs((fh, fw), strides, padding))


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
  """weights - learning_rate * grad."""
  return load_ops().tl_sgd_update(weights, grad, learning_rate=float(learning_rate))


def sgd_momentum_update(weights, velocity, grad, learning_rate: float, momentum: float):
  """Keras SGD with momentum; returns (new_weights, new_velocity)."""
  return load_ops().tl_sgd_momentum_update(
      weights, velocity, grad, learning_rate=float(learning_rate), momentum=float(momentum))
