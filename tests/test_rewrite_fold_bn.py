import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import rewrite


def _randomize_bn(model, seed=0):
  rng = np.random.RandomState(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      gamma, beta, mean, var = layer.get_weights()
      layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape),
                         rng.uniform(-0.5, 0.5, beta.shape),
                         rng.uniform(-0.5, 0.5, mean.shape),
                         rng.uniform(0.5, 2.0, var.shape)])


def _model():
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="c")(inp)
  x = keras.layers.BatchNormalization(name="c_bn")(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                                   name="dw")(x)
  x = keras.layers.BatchNormalization(name="dw_bn")(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  x = keras.layers.Dense(5, name="fc")(x)
  out = keras.layers.BatchNormalization(name="fc_bn")(x)
  model = keras.Model(inp, out)
  _randomize_bn(model)
  return model


def test_folding_is_exact_and_removes_batchnorms():
  model = _model()
  folded = rewrite.fold_batch_norm(model)
  x = np.random.RandomState(1).rand(4, 8, 8, 3).astype(np.float32)
  np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5)
  assert not any(isinstance(l, keras.layers.BatchNormalization)
                 for l in folded.layers)
  assert folded.get_layer("c").use_bias and folded.get_layer("dw").use_bias
  assert len(model.layers) - len(folded.layers) == 3


def test_original_model_is_untouched():
  model = _model()
  before = [w.copy() for w in model.get_weights()]
  folded = rewrite.fold_batch_norm(model)
  assert not model.get_layer("c").use_bias
  for a, b in zip(before, model.get_weights()):
    np.testing.assert_array_equal(a, b)
  assert folded.get_layer("c") is not model.get_layer("c")


def test_batchnorm_whose_input_is_also_read_elsewhere_is_kept():
  inp = keras.Input((4, 4, 2))
  conv = keras.layers.Conv2D(2, 1, use_bias=False)(inp)
  bn = keras.layers.BatchNormalization(name="kept")(conv)
  out = keras.layers.Add()([conv, bn])
  model = keras.Model(inp, out)
  _randomize_bn(model)
  folded = rewrite.fold_batch_norm(model)
  assert "kept" in [l.name for l in folded.layers]
  x = np.random.RandomState(2).rand(1, 4, 4, 2).astype(np.float32)
  np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_folded_model_round_trips_through_config():
  folded = rewrite.fold_batch_norm(_model())
  clone = keras.Model.from_config(folded.get_config())
  clone.set_weights(folded.get_weights())
  x = np.random.RandomState(3).rand(1, 8, 8, 3).astype(np.float32)
  np.testing.assert_array_equal(clone(x).numpy(), folded(x).numpy())


def test_subclassed_model_is_rejected_with_a_fix():
  class Net(keras.Model):

    def call(self, x):
      return x

  with pytest.raises(rewrite.UnsupportedModelError, match="functional"):
    rewrite.fold_batch_norm(Net())
