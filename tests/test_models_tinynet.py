"""Tests for tflite_tl.models.tinynet."""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.models import tinynet


def test_defaults_shapes_and_size():
  model = tinynet.tiny()
  assert model.input_shape == (None, 32, 32, 1)
  assert model.output_shape == (None, 10)
  assert model.count_params() == 2_626
  assert model(np.zeros((3, 32, 32, 1), np.float32)).shape == (3, 10)


def test_contains_each_structure_once():
  model = tinynet.tiny(resolution=16, input_channels=3, num_classes=4)
  kinds = [type(l) for l in model.layers]
  assert kinds.count(keras.layers.Add) == 1
  assert kinds.count(keras.layers.DepthwiseConv2D) == 2
  relus = [l.max_value for l in model.layers
           if isinstance(l, keras.layers.ReLU)]
  assert None in relus and 6.0 in relus
  assert model.get_layer("block1_dw").strides == (2, 2)


def test_width_multiplier():
  assert tinynet.tiny(width_multiplier=2.0).get_layer("stem").filters == 16
