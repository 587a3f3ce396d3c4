import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import layers
from tflite_tl import train


def _model():
  keras.utils.set_random_seed(0)
  inp = keras.Input((6, 6, 1))
  h = keras.layers.Conv2D(3, 3, name="conv")(inp)
  h = keras.layers.BatchNormalization(name="bn")(h)
  h = layers.BatchNormalization(name="partial_bn")(h)
  h = keras.layers.GlobalAveragePooling2D()(h)
  return keras.Model(inp, keras.layers.Dense(2)(h))


def test_moving_stats_become_mean_of_batch_stats():
  model = _model()
  x = np.random.RandomState(0).rand(40, 6, 6, 1).astype(np.float32)
  kernel_before = model.get_layer("conv").kernel.numpy().copy()
  partial_before = model.get_layer("partial_bn").moving_mean.numpy().copy()
  assert train.recalibrate_batchnorm(model, x, batch_size=20) == 1
  conv_out = model.get_layer("conv")(x).numpy()
  batch_means = [conv_out[i:i + 20].mean((0, 1, 2)) for i in (0, 20)]
  bn = model.get_layer("bn")
  np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean(batch_means, 0),
                             rtol=1e-5, atol=1e-6)
  assert bn.momentum == 0.99  # restored
  np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(),
                                kernel_before)
  np.testing.assert_array_equal(
      model.get_layer("partial_bn").moving_mean.numpy(), partial_before)


def test_frozen_and_absent_layers_are_left_alone():
  model = _model()
  model.get_layer("bn").trainable = False
  x = np.zeros((8, 6, 6, 1), np.float32)
  assert train.recalibrate_batchnorm(model, x) == 0


def test_errors():
  with pytest.raises(ValueError, match="batch_size"):
    train.recalibrate_batchnorm(_model(), np.zeros((4, 6, 6, 1)), batch_size=1)
