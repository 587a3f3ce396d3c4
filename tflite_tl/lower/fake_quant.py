"""Frozen conv/dense kernels replaced by their per-channel int8 values.

The builtin flavor's int8 lowering stores each frozen kernel as int8 in the
flatbuffer and rebuilds its float32 value with DEQUANTIZE and MUL (see
:mod:`tflite_tl.lower.int8_constants`). The graph therefore computes with
``w_hat = float32(q) * s`` (q = round_half_away(w / s) in [-127, 127],
s = max|w| / 127 per output channel), and so must its TF reference: before
lowering, every frozen kernel takes the value ``w_hat``, bit for bit what
TFLM's DEQUANTIZE followed by a float32 MUL produces.
"""
import contextlib
import dataclasses
from typing import Iterator, List

import numpy as np

from tflite_tl._compat import keras
from tflite_tl.layers import partial
from tflite_tl.lower.tl import quantization

# Exact classes whose kernel feeds a builtin conv / depthwise / dense op
# unchanged (a subclass may transform its kernel in ``call``).
_KERNEL_LAYERS = {
    keras.layers.Conv2D: "kernel",
    keras.layers.DepthwiseConv2D: "depthwise_kernel",
    keras.layers.Dense: "kernel",
    partial.Conv2D: "kernel",
    partial.DepthwiseConv2D: "depthwise_kernel",
    partial.Dense: "kernel",
}


@dataclasses.dataclass(frozen=True)
class FrozenKernel:
  """One frozen kernel in its int8 form.

  Attributes:
    name: the Keras weight name without ':0'.
    values: float32 ``q * scales`` in the Keras layout (what the lowering
      sees).
    scales: float32 per output channel (for a depthwise kernel
      [h, w, C, M] one per C*M channel, TFLite's order).
  """
  name: str
  values: np.ndarray
  scales: np.ndarray


def _channel_form(weight: np.ndarray, layer) -> np.ndarray:
  """The kernel with its output channels on the last axis."""
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    h, w, c, m = weight.shape
    return weight.reshape(h, w, c * m)
  return weight


def fake_quantize(weight: np.ndarray, layer) -> FrozenKernel:
  """``weight`` (a kernel of ``layer``) as per-channel ``q * s``."""
  weight = np.asarray(weight, np.float32)
  channels = _channel_form(weight, layer)
  scales = quantization.weight_scales(channels, -1)
  q = quantization.quantize_weights(channels, scales, -1)
  values = (q.astype(np.float32) * scales).astype(np.float32)
  return FrozenKernel("", values.reshape(weight.shape), scales)


def frozen_kernels(model: keras.Model) -> List:
  """(layer, weight) of every frozen kernel that is stored as int8."""
  trained = {w.ref() for w in model.trainable_weights}
  found = []
  for layer in model.layers:
    short = _KERNEL_LAYERS.get(type(layer))
    if short is None:
      continue
    for w in layer.weights:
      if (w.name.split("/")[-1].split(":")[0] == short
          and w.ref() not in trained and len(w.shape) >= 2):
        found.append((layer, w))
  return found


@contextlib.contextmanager
def fake_quantized_kernels(model: keras.Model) -> Iterator[List[FrozenKernel]]:
  """Gives every frozen kernel of ``model`` its int8 value for the duration
  of the ``with`` block and restores the original values afterwards (also on
  an exception). Yields the :class:`FrozenKernel` list."""
  kernels, saved = [], []
  try:
    for layer, w in frozen_kernels(model):
      original = w.numpy()
      fq = fake_quantize(original, layer)
      saved.append((w, original))
      w.assign(fq.values)
      kernels.append(dataclasses.replace(fq, name=w.name.split(":")[0]))
    yield kernels
  finally:
    for w, original in saved:
      w.assign(original)
