import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import layers
from tflite_tl import rewrite


def _model():
  inp = keras.Input((6, 6, 3))
  x = keras.layers.Conv2D(4, 3, name="c")(inp)
  x = keras.layers.BatchNormalization(name="bn")(x)
  x = keras.layers.GroupNormalization(groups=2, name="gn")(x)
  x = keras.layers.Flatten()(x)
  return keras.Model(inp, keras.layers.Dense(3, name="fc")(x))


def _names(model):
  return sorted(w.name.split(":")[0] for w in model.trainable_weights)


def test_freeze_leaves_nothing_trainable_and_keeps_outputs():
  model = _model()
  frozen = rewrite.freeze(model)
  assert frozen.trainable_weights == []
  assert len(model.trainable_weights) == 8
  x = np.random.RandomState(0).rand(2, 6, 6, 3).astype(np.float32)
  np.testing.assert_allclose(frozen(x).numpy(), model(x).numpy(), atol=1e-6)


def test_biases_only_after_freeze():
  model = rewrite.make_biases_trainable(rewrite.freeze(_model()))
  assert _names(model) == ["c/bias", "fc/bias"]
  assert isinstance(model.get_layer("c"), layers.Conv2D)


def test_batchnorms_become_frozen_statistics_batchnorm():
  model = rewrite.set_trainable(_model(), lambda layer, current: current)
  assert isinstance(model.get_layer("bn"), layers.BatchNormalization)
  assert "bn/gamma" in _names(model)


def test_partial_training_of_an_unsupported_layer_names_it():
  with pytest.raises(rewrite.UnsupportedModelError,
                     match="'gn' \\(GroupNormalization\\).*supported for"):
    rewrite.set_trainable(_model(), lambda layer, current: {"gamma"})


def test_make_layers_trainable_rejects_unknown_names():
  with pytest.raises(ValueError, match="no layer named \\['nope'\\]"):
    rewrite.make_layers_trainable(_model(), ["nope"])
