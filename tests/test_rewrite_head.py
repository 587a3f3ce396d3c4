import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import rewrite


def _model(softmax=True):
  inp = keras.Input((4, 4, 2))
  x = keras.layers.GlobalAveragePooling2D()(inp)
  x = keras.layers.Dense(7, name="logits")(x)
  if softmax:
    x = keras.layers.Softmax()(x)
  return keras.Model(inp, x)


def test_replaces_head_behind_softmax_deterministically():
  model = _model()
  a = rewrite.replace_classifier(model, 3, seed=1)
  b = rewrite.replace_classifier(model, 3, seed=1)
  assert a.output_shape == (None, 3) and model.output_shape == (None, 7)
  np.testing.assert_array_equal(a.get_layer("logits").kernel.numpy(),
                                b.get_layer("logits").kernel.numpy())
  assert not np.any(a.get_layer("logits").bias.numpy())


def test_none_keeps_the_head():
  model = _model(softmax=False)
  same = rewrite.replace_classifier(model, None)
  np.testing.assert_array_equal(same.get_layer("logits").kernel.numpy(),
                                model.get_layer("logits").kernel.numpy())


def test_non_dense_output_is_rejected():
  inp = keras.Input((4, 4, 2))
  model = keras.Model(inp, keras.layers.Conv2D(3, 1, name="conv_out")(inp))
  with pytest.raises(rewrite.UnsupportedModelError, match="'conv_out'"):
    rewrite.replace_classifier(model, 3)
