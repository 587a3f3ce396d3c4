"""TFLM's int8 kernels re-computed exactly in TensorFlow (the reference).

The TF reference of an int8 train step must produce the same int8 values as
TFLM, not a float approximation of them: one flipped rounding changes a ReLU
mask and then every later step. These functions reproduce TFLM's reference
integer kernels bit for bit: the int32 accumulators (computed exactly, as
float64 convolutions of small integers), TFLite's fixed-point multipliers
(``QuantizeMultiplier``: frexp, 31-bit mantissa), the double-rounding
``MultiplyByQuantizedMultiplier`` (gemmlowp's SaturatingRoundingDoublingHigh
Mul then RoundingDivideByPOT; TFLM builds without TFLITE_SINGLE_ROUNDING),
and the activation clamps of ``CalculateActivationRangeQuantized``.
Arrays of int8 values travel as int32 tensors.
"""
import math
from typing import Optional, Tuple

import numpy as np

from tflite_tl._compat import tf
from tflite_tl.lower.tl.flatbuffer_writer import Quantization

_INT32_MIN = -(1 << 31)


def quantize_multiplier(m: float) -> Tuple[int, int]:
  """TFLite's QuantizeMultiplier: (31-bit mantissa, shift) of ``m``."""
  if m == 0.0:
    return 0, 0
  q, shift = math.frexp(m)
  q_fixed = int(_round_half_away_scalar(q * (1 << 31)))
  if q_fixed == (1 << 31):
    q_fixed //= 2
    shift += 1
  if shift < -31:
    return 0, 0
  return q_fixed, shift


def _round_half_away_scalar(x: float) -> float:
  return math.copysign(math.floor(abs(x) + 0.5), x)


def round_half_away(x):
  """std::round on a float64 tensor (TF's tf.round rounds half to even)."""
  return tf.sign(x) * tf.floor(tf.abs(x) + 0.5)


def _trunc_div_pow2(v, bits: int):
  """C++ signed division by 2**bits (truncates toward zero), int64."""
  d = tf.constant(1 << bits, tf.int64)
  q = tf.math.floordiv(v, d)
  r = tf.math.floormod(v, d)
  return q + tf.cast((v < 0) & (r != 0), tf.int64)


def saturating_rounding_doubling_high_mul(a, b):
  """gemmlowp::SaturatingRoundingDoublingHighMul(int32 a, int32 b); ``b`` a
  Python int or an int64 tensor broadcasting against ``a``."""
  a64 = tf.cast(a, tf.int64)
  b64 = tf.cast(b, tf.int64)
  ab = a64 * b64
  nudge = tf.where(ab >= 0, tf.constant(1 << 30, tf.int64),
                   tf.constant(1 - (1 << 30), tf.int64))
  high = _trunc_div_pow2(ab + nudge, 31)
  overflow = (a64 == _INT32_MIN) & (b64 == _INT32_MIN)
  return tf.where(overflow, tf.constant((1 << 31) - 1, tf.int64), high)


def rounding_divide_by_pot(x, exponent):
  """gemmlowp::RoundingDivideByPOT on int64 values holding int32s; the
  exponent a Python int or an int64 tensor broadcasting against ``x``."""
  exponent = tf.cast(exponent, tf.int64)
  one = tf.constant(1, tf.int64)
  mask = tf.bitwise.left_shift(one, exponent) - 1
  remainder = tf.bitwise.bitwise_and(x, mask)
  threshold = tf.bitwise.right_shift(mask, one) + tf.cast(x < 0, tf.int64)
  shifted = tf.bitwise.right_shift(x, exponent + tf.zeros_like(x))
  return shifted + tf.cast(remainder > threshold, tf.int64)


def multiply_by_quantized_multiplier(x, multiplier, shift):
  """TFLite's double-rounding MultiplyByQuantizedMultiplier (int64 in/out);
  multiplier and shift scalars or per-last-axis-channel vectors."""
  shift = np.asarray(shift, np.int64)
  left = tf.constant(np.maximum(shift, 0), tf.int64)
  right = tf.constant(np.maximum(-shift, 0), tf.int64)
  x = tf.bitwise.left_shift(tf.cast(x, tf.int64), left + tf.zeros_like(
      tf.cast(x, tf.int64)))
  high = saturating_rounding_doubling_high_mul(
      x, tf.constant(np.asarray(multiplier, np.int64)))
  return rounding_divide_by_pot(high, right)


def per_channel_requantize(acc, multipliers, shifts):
  """MultiplyByQuantizedMultiplier with a multiplier per last-axis channel."""
  return multiply_by_quantized_multiplier(acc, multipliers, shifts)


def quantize_scalar(q: Quantization, value: float) -> int:
  """TFLite's Quantize(): zero_point + round(value / scale) (float math)."""
  return int(q.zero_point[0]) + int(_round_half_away_scalar(
      float(np.float32(value) / np.float32(q.scale[0]))))


def activation_range(activation: Optional[str],
                     q: Quantization) -> Tuple[int, int]:
  """CalculateActivationRangeQuantized for int8 outputs."""
  low, high = -128, 127
  if activation == "relu":
    low = max(low, quantize_scalar(q, 0.0))
  elif activation == "relu6":
    low = max(low, quantize_scalar(q, 0.0))
    high = min(high, quantize_scalar(q, 6.0))
  elif activation not in (None, "linear"):
    raise ValueError(f"activation {activation!r} has no int8 range rule.")
  return low, high


def mask_bounds(activation: str, q: Quantization) -> Tuple[int, int]:
  """(lower, upper) of TL_RELU_MASK on int8: the quantized 0 and 6 (128 for
  a plain ReLU); a bit is set when lower < q < upper."""
  zero = int(q.zero_point[0])
  if activation == "relu":
    return zero, 128
  return zero, zero + int(_round_half_away_scalar(
      float(np.float32(6.0) / np.float32(q.scale[0]))))


def dequantize(q_values, q: Quantization):
  """TFLM's DEQUANTIZE: float(scale * (q - zero_point)), scale as double."""
  scale = float(np.float32(q.scale[0]))
  return tf.cast(scale * (tf.cast(q_values, tf.float64) - q.zero_point[0]),
                 tf.float32)


def quantize(x, q: Quantization):
  """TFLM's QUANTIZE float32 -> int8: round(x / scale) + zero_point, clamped
  (the division in float32, the rounding exact)."""
  ratio = tf.cast(x / np.float32(q.scale[0]), tf.float64)
  values = round_half_away(ratio) + q.zero_point[0]
  return tf.cast(tf.clip_by_value(values, -128, 127), tf.int32)


def requantize(q_values, q_in: Quantization, q_out: Quantization):
  """TFLM's QUANTIZE int8 -> int8 (Requantize)."""
  m, s = quantize_multiplier(float(np.float64(np.float32(q_in.scale[0]))
                                   / np.float64(np.float32(q_out.scale[0]))))
  v = multiply_by_quantized_multiplier(
      tf.cast(q_values, tf.int64) - q_in.zero_point[0], m, s)
  v = v + q_out.zero_point[0]
  return tf.cast(tf.clip_by_value(v, -128, 127), tf.int32)


def _effective_multipliers(s_in: float, s_filter, s_out: float):
  pairs = [quantize_multiplier(float(np.float64(np.float32(s_in))
                                     * np.float64(np.float32(sf))
                                     / np.float64(np.float32(s_out))))
           for sf in np.asarray(s_filter).reshape(-1)]
  return [p[0] for p in pairs], [p[1] for p in pairs]


def _hwio(filter_q):
  """An OHWI int8 filter (NumPy, or a tensor of integer values: a filter
  re-quantized from a trained master) as a float64 HWIO kernel."""
  return tf.transpose(tf.cast(tf.convert_to_tensor(filter_q), tf.float64),
                      (1, 2, 3, 0))


def conv2d(x_q, q_in: Quantization, filter_q: np.ndarray, filter_scales,
           bias_q, q_out: Quantization, *, stride: int, padding: str,
           activation: Optional[str], groups: int = 1):
  """TFLM's int8 CONV_2D (ConvPerChannel). ``filter_q`` OHWI int8,
  ``bias_q`` int32 [Cout] (tensor), ``x_q`` int32 values [N,H,W,Cin]."""
  x = tf.cast(x_q, tf.float64) - q_in.zero_point[0]
  if padding == "SAME":
    x = _same_pad(x, filter_q.shape[1:3], stride)
  kernel = _hwio(filter_q)
  if groups == 1:
    acc = tf.nn.conv2d(x, kernel, stride, "VALID")
  else:
    xs = tf.split(x, groups, axis=3)
    ks = tf.split(kernel, groups, axis=3)
    acc = tf.concat([tf.nn.conv2d(a, b, stride, "VALID")
                     for a, b in zip(xs, ks)], axis=3)
  return _finish(acc, bias_q, q_in, filter_scales, q_out, activation)


def depthwise_conv2d(x_q, q_in: Quantization, filter_q: np.ndarray,
                     filter_scales, bias_q, q_out: Quantization, *,
                     stride: int, padding: str, activation: Optional[str]):
  """TFLM's int8 DEPTHWISE_CONV_2D (per channel), ``filter_q`` [1,kh,kw,C]."""
  x = tf.cast(x_q, tf.float64) - q_in.zero_point[0]
  if padding == "SAME":
    x = _same_pad(x, filter_q.shape[1:3], stride)
  kernel = _hwio(filter_q)
  acc = tf.nn.depthwise_conv2d(x, kernel, [1, stride, stride, 1], "VALID")
  return _finish(acc, bias_q, q_in, filter_scales, q_out, activation)


def _same_pad(x, kernel_hw, stride: int):
  # TF's SAME padding, applied explicitly so the float64 conv sees exact
  # zeros for padded positions (real 0 is q - zero_point = 0).
  pads = []
  for size, k in zip(x.shape[1:3], kernel_hw):
    out = -(-int(size) // stride)
    total = max((out - 1) * stride + int(k) - int(size), 0)
    pads.append([total // 2, total - total // 2])
  return tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]])


def _finish(acc, bias_q, q_in, filter_scales, q_out, activation):
  acc = tf.cast(tf.round(acc), tf.int64)  # exact integers in float64
  acc = acc + tf.cast(bias_q, tf.int64)
  mults, shifts = _effective_multipliers(q_in.scale[0], filter_scales,
                                         q_out.scale[0])
  out = per_channel_requantize(acc, mults, shifts) + q_out.zero_point[0]
  low, high = activation_range(activation, q_out)
  return tf.cast(tf.clip_by_value(out, low, high), tf.int32)


def _smaller_than_one(m: float) -> Tuple[int, int]:
  """QuantizeMultiplierSmallerThanOneExp: (multiplier, left shift <= 0)."""
  multiplier, shift = quantize_multiplier(m)
  return multiplier, shift


def add(a_q, q_a: Quantization, b_q, q_b: Quantization, q_out: Quantization,
        activation: Optional[str]):
  """TFLM's int8 ADD (left shift 20, per-input and output multipliers)."""
  left_shift = 20
  sa, sb = np.float32(q_a.scale[0]), np.float32(q_b.scale[0])
  twice_max = np.float64(np.float32(2.0) * max(sa, sb))
  m_a, s_a = _smaller_than_one(float(np.float64(sa) / twice_max))
  m_b, s_b = _smaller_than_one(float(np.float64(sb) / twice_max))
  m_o, s_o = _smaller_than_one(float(
      twice_max / (np.float64(1 << left_shift)
                   * np.float64(np.float32(q_out.scale[0])))))

  def scaled(v, zero, m, s):
    shifted = (tf.cast(v, tf.int64) - zero) * (1 << left_shift)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, m), -s)

  raw = (scaled(a_q, q_a.zero_point[0], m_a, s_a)
         + scaled(b_q, q_b.zero_point[0], m_b, s_b))
  out = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(raw, m_o),
                               -s_o) + q_out.zero_point[0]
  low, high = activation_range(activation, q_out)
  return tf.cast(tf.clip_by_value(out, low, high), tf.int32)


def average_pool(x_q, filter_hw, stride_hw, padding: str):
  """TFLM's int8 AVERAGE_POOL_2D (same quantization in and out): the sum over
  the valid window, divided with rounding to nearest (ties away from 0)."""
  x = tf.cast(x_q, tf.float64)
  ksize = [1, filter_hw[0], filter_hw[1], 1]
  strides = [1, stride_hw[0], stride_hw[1], 1]
  ones = tf.ones_like(x)
  total = _window_sum(x, ksize, strides, padding)
  count = _window_sum(ones, ksize, strides, padding)
  total = tf.cast(tf.round(total), tf.int64)
  count = tf.cast(tf.round(count), tf.int64)
  half = count // 2
  num = tf.where(total > 0, total + half, total - half)
  q = tf.math.floordiv(num, count)
  r = tf.math.floormod(num, count)
  q = q + tf.cast((num < 0) & (r != 0), tf.int64)  # C++ truncation
  return tf.cast(tf.clip_by_value(q, -128, 127), tf.int32)


def _window_sum(x, ksize, strides, padding):
  kh, kw = ksize[1], ksize[2]
  channels = int(x.shape[-1])
  kernel = tf.ones([kh, kw, channels, 1], tf.float64)
  return tf.nn.depthwise_conv2d(x, kernel, strides, padding)


def relu(x_q, q_in: Quantization, q_out: Quantization, activation: str):
  """TFLM's int8 RELU / RELU6 (requantized to the output's parameters)."""
  m, s = quantize_multiplier(float(np.float64(np.float32(q_in.scale[0]))
                                   / np.float64(np.float32(q_out.scale[0]))))
  v = multiply_by_quantized_multiplier(
      tf.cast(x_q, tf.int64) - q_in.zero_point[0], m, s) + q_out.zero_point[0]
  low, high = activation_range(activation, q_out)
  return tf.cast(tf.clip_by_value(v, low, high), tf.int32)
