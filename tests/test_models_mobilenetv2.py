"""Tests for tflite_tl.models.mobilenetv2."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.models import mobilenetv2


def test_published_parameter_count():
  # keras.applications.MobileNetV2(alpha=1.0, 224, 1000 classes).
  assert mobilenetv2.mobilenet_v2().count_params() == 3_538_984


@pytest.mark.parametrize("alpha", [0.35, 1.4])
def test_matches_keras_applications(alpha):
  ours = mobilenetv2.mobilenet_v2(resolution=96, width_multiplier=alpha)
  reference = keras.applications.MobileNetV2(
      input_shape=(96, 96, 3), alpha=alpha, weights=None, classes=1000)
  assert ours.count_params() == reference.count_params()
  ours_convs = [l.filters for l in ours.layers
                if isinstance(l, keras.layers.Conv2D)
                and not isinstance(l, keras.layers.DepthwiseConv2D)]
  reference_convs = [l.filters for l in reference.layers
                     if type(l) is keras.layers.Conv2D]
  assert ours_convs == reference_convs


def test_embedded_variant_shapes_and_layers():
  model = mobilenetv2.mobilenet_v2(resolution=32, input_channels=1,
                                    num_classes=10, width_multiplier=0.35,
                                    last_channels=256)
  assert model.input_shape == (None, 32, 32, 1)
  assert model.output_shape == (None, 10)
  assert model.get_layer("head_conv").filters == 256
  assert model.count_params() == 293_706
  stock = (keras.layers.InputLayer, keras.layers.Conv2D, keras.layers.ReLU,
           keras.layers.BatchNormalization, keras.layers.Add,
           keras.layers.GlobalAveragePooling2D, keras.layers.Dropout,
           keras.layers.Dense)
  assert all(type(l) in stock or type(l) is keras.layers.DepthwiseConv2D
             for l in model.layers)
  assert not any(isinstance(l, keras.layers.ZeroPadding2D)
                 for l in model.layers)
  assert model(np.zeros((1, 32, 32, 1), np.float32)).shape == (1, 10)


def test_bad_last_channels():
  with pytest.raises(ValueError, match="last_channels"):
    mobilenetv2.mobilenet_v2(last_channels=0)
