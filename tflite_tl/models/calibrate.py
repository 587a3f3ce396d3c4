"""Re-estimating BatchNorm statistics from data.

``calibrate_batch_norm(model, images)`` sets each BatchNormalization's moving
mean and variance to the mean and variance of its input over ``images``,
layer by layer in graph order, so that each layer sees inputs already
normalised by the layers before it (the per-layer re-estimation used after
changing a network's resolution or domain, e.g. FixRes).

It also gives randomly initialised networks a usable scale. A
keras.applications model built with ``weights=None`` has identity BatchNorm
statistics (mean 0, variance 1), and its activations shrink block after
block: MobileNetV3 and EfficientNet at 32 px end with features of ~1e-10,
where every train step is numerically trivial. After calibration every
BatchNorm output has unit variance on the calibration data, so gradients
and their rounding are those of a trained-scale network. The benchmarks use
it on seeded random images to make non-trivial models without downloading
weights.
"""
import numpy as np

from tflite_tl._compat import keras


def _batch_norms(model):
  return [l for l in model.layers
          if isinstance(l, keras.layers.BatchNormalization)]


def calibrate_batch_norm(model: keras.Model, images: np.ndarray,
                         batch_size: int = 32) -> keras.Model:
  """Sets every BatchNorm's moving statistics from ``images``; in place.

  Args:
    model: a functional tf-keras model (flat, or with the BatchNorms at its
      top level).
    images: float32 NHWC inputs of the model.
    batch_size: images per forward pass.

  Returns:
    ``model`` (modified in place).

  Raises:
    ValueError: a BatchNorm normalises an axis other than the last, or is
      used at several places of the graph.
  """
  for bn in _batch_norms(model):
    axis = bn.axis if isinstance(bn.axis, int) else (
        bn.axis[0] if len(bn.axis) == 1 else None)
    if axis not in (-1, len(bn.input_shape) - 1):
      raise ValueError(f"calibrate_batch_norm: BatchNorm '{bn.name}' "
                       f"normalises axis {bn.axis}; only the last axis "
                       "(channels) is supported.")
    if len(bn._inbound_nodes) != 1:  # pylint: disable=protected-access
      raise ValueError(f"calibrate_batch_norm: BatchNorm '{bn.name}' is "
                       "shared by several parts of the graph.")
    probe = keras.Model(model.inputs, bn.input)
    x = np.concatenate([
        probe(images[i:i + batch_size], training=False).numpy()
        for i in range(0, len(images), batch_size)])
    axes = tuple(range(x.ndim - 1))
    x = x.astype(np.float64)
    bn.moving_mean.assign(x.mean(axis=axes).astype(np.float32))
    bn.moving_variance.assign(x.var(axis=axes).astype(np.float32))
  return model
