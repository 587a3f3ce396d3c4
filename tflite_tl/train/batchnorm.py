"""Re-estimating BatchNorm moving statistics after training ("precise BN").

Training with ``fit(training=True)`` updates a stock BatchNormalization's
moving statistics as an exponential average (momentum 0.99) of batch
statistics computed with *older* weights. After a short run they lag the
final weights and inference-mode accuracy suffers (the 5-epoch Fashion-MNIST
example in docs/data.md: test accuracy 0.31 before, 0.72 after). Re-estimating them with the final weights fixes this (Wu &
Johnson, "Rethinking 'Batch' in BatchNorm", 2021: "precise BN").

The pass runs the model in training mode over the data and sets each moving
statistic to the equal-weight mean of the per-batch statistics (a cumulative
average instead of an exponential one, obtained by setting momentum to
1 - 1/k at batch k). Only layers that use batch statistics in training mode
are affected: trainable stock ``keras.layers.BatchNormalization``;
``tflite_tl.layers.BatchNormalization`` and frozen layers keep theirs.
"""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.layers import partial


def _batch_statistic_layers(model):
  # tf.Module.submodules walks nested models too, in a stable order.
  return [m for m in model.submodules
          if isinstance(m, keras.layers.BatchNormalization)
          and not isinstance(m, partial.BatchNormalization) and m.trainable]


def recalibrate_batchnorm(model, x: np.ndarray, *, batch_size: int = 256) -> int:
  """Sets moving mean/variance of batch-statistics BN layers from ``x``.

  Args:
    model: a Keras model (weights are not changed).
    x: float32 NHWC training images (no labels needed); a few thousand suffice.
    batch_size: batch used for the statistics; use the training batch size
      (or larger) so they match what training normalised with.

  Returns:
    The number of BatchNormalization layers re-estimated (0: nothing to do).
  """
  if batch_size < 2:
    raise ValueError(f"batch_size must be >= 2 for batch statistics, got "
                     f"{batch_size!r}.")
  layers = _batch_statistic_layers(model)
  x = np.asarray(x, np.float32)
  if not layers:
    return 0
  if len(x) < 2:
    raise ValueError("recalibrate_batchnorm needs at least 2 samples.")
  momenta = [layer.momentum for layer in layers]
  try:
    # Eager calls: momentum is read when the layer runs, not frozen in a trace.
    for k, start in enumerate(range(0, len(x) - 1, batch_size), start=1):
      for layer in layers:
        layer.momentum = 1.0 - 1.0 / k
      model(x[start:start + batch_size], training=True)
  finally:
    for layer, momentum in zip(layers, momenta):
      layer.momentum = momentum
  return len(layers)
