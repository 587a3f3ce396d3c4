"""int8 quantization parameters of the kernel flavor's graphs.

Activations: per-tensor asymmetric int8 from ranges calibrated on the user's
images (TFLite's rule: the range is widened to include 0, scale = range/255,
zero point nudged into [-128, 127]). Weights: per-channel symmetric int8
(zero point 0, [-127, 127]) as TFLite requires for CONV_2D and
DEPTHWISE_CONV_2D. Biases: int32 with per-channel scale s_input * s_weight[c].
Images enter the graph as int8 with scale 1/255 and zero point -128, which
represents every 8-bit pixel value exactly (pixel/255 in [0, 1]).
"""
import dataclasses
from typing import Dict, Mapping, Tuple

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.lower.tl.flatbuffer_writer import Quantization

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127
IMAGE_QUANTIZATION = Quantization.per_tensor(1.0 / 255.0, -128)


@dataclasses.dataclass(frozen=True)
class Range:
  """Observed real range of one activation tensor."""
  low: float
  high: float


def activation_quantization(r: Range) -> Quantization:
  """int8 per-tensor quantization covering ``r`` (and 0)."""
  low, high = min(float(r.low), 0.0), max(float(r.high), 0.0)
  if high - low < 1e-8:
    high = low + 1e-8
  scale = (high - low) / (QMAX - QMIN)
  zero_point = QMIN - low / scale
  zero_point = int(np.clip(np.round(zero_point), QMIN, QMAX))
  return Quantization.per_tensor(scale, zero_point)


def weight_scales(weights: np.ndarray, axis: int) -> np.ndarray:
  """Per-channel symmetric scales max|w|/127 along ``axis`` (1 for zero
  channels, whose weights then quantize to 0)."""
  w = np.asarray(weights, np.float64)
  other = tuple(a for a in range(w.ndim) if a != axis % w.ndim)
  peak = np.max(np.abs(w), axis=other) if other else np.abs(w)
  scales = np.where(peak > 0, peak / WEIGHT_QMAX, 1.0)
  return scales.astype(np.float32)


def round_half_away(x: np.ndarray) -> np.ndarray:
  """TFLite's rounding (TfLiteRound / std::round): halves away from zero."""
  x = np.asarray(x, np.float64)
  return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_weights(weights: np.ndarray, scales: np.ndarray,
                     axis: int) -> np.ndarray:
  """int8 weights for per-channel ``scales`` along ``axis``: the quotient in
  float32, rounded half away from zero (``roundf(w / s)``, as the TL update
  kernels re-quantize trained weights)."""
  w = np.asarray(weights, np.float32)
  shape = [1] * w.ndim
  shape[axis % w.ndim] = -1
  ratio = w / np.asarray(scales, np.float32).reshape(shape)
  q = round_half_away(ratio.astype(np.float64))
  return np.clip(q, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)


def quantize_bias(bias: np.ndarray, bias_scales: np.ndarray) -> np.ndarray:
  """int32 bias for per-channel ``bias_scales`` (= s_input * s_weight): the
  quotient in double, rounded half away from zero, saturated (as the TL
  update kernels rewrite trained biases)."""
  q = round_half_away(np.asarray(bias, np.float64)
                      / np.asarray(bias_scales, np.float64))
  info = np.iinfo(np.int32)
  return np.clip(q, info.min, info.max).astype(np.int32)


def calibrate(model: keras.Model, images: np.ndarray,
              batch_size: int = 32) -> Dict[int, Range]:
  """Real ranges of every layer output of ``model`` over ``images``.

  Keyed by ``id()`` of the Keras output tensor of each node (the tensor ids
  the graph builder uses). The model runs in inference mode.
  """
  images = np.asarray(images, np.float32)
  if len(images) == 0:
    raise ValueError("int8 calibration needs at least one image; pass the "
                     "target dataset's training images.")
  tensors = []
  for depth in sorted(model._nodes_by_depth, reverse=True):  # pylint: disable=protected-access
    for node in model._nodes_by_depth[depth]:  # pylint: disable=protected-access
      if not node.is_input:
        tensors.append(tf.nest.flatten(node.outputs)[0])
  probe = keras.Model(model.inputs, tensors)
  lows = [np.inf] * len(tensors)
  highs = [-np.inf] * len(tensors)
  for start in range(0, len(images), batch_size):
    outs = probe(images[start:start + batch_size], training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for i, out in enumerate(outs):
      values = np.asarray(out)
      lows[i] = min(lows[i], float(values.min()))
      highs[i] = max(highs[i], float(values.max()))
  return {id(t): Range(lo, hi) for t, lo, hi in zip(tensors, lows, highs)}


def ranges_to_quantization(
    ranges: Mapping[int, Range]) -> Dict[int, Quantization]:
  return {k: activation_quantization(r) for k, r in ranges.items()}


def quantize_image(images: np.ndarray) -> np.ndarray:
  """Float images in [0, 1] as the int8 graph input (exact for pixel/255)."""
  q = round_half_away(np.asarray(images, np.float64) * 255.0) - 128
  return np.clip(q, QMIN, QMAX).astype(np.int8)



@dataclasses.dataclass(frozen=True)
class LayerQuantization:
  """The int8 form of a conv/depthwise/dense layer's frozen weights and
  bias, shared by the graph emitter and the TF reference."""
  filter_q: np.ndarray        # int8, TFLite layout
  filter_scales: np.ndarray   # float32 [channels]
  channel_axis: int
  bias_scales: np.ndarray     # float32 [channels] = s_input * s_filter
  bias_q: np.ndarray          # int32 [channels]


def layer_quantization(tflite_filter: np.ndarray, channel_axis: int,
                       input_scale: float, bias) -> LayerQuantization:
  scales = weight_scales(tflite_filter, channel_axis)
  channels = tflite_filter.shape[channel_axis]
  bias = (np.zeros([channels], np.float32) if bias is None
          else np.asarray(bias, np.float32))
  bias_scales = (np.float32(input_scale) * scales).astype(np.float32)
  return LayerQuantization(
      quantize_weights(tflite_filter, scales, channel_axis), scales,
      channel_axis, bias_scales, quantize_bias(bias, bias_scales))

