"""Tests for tflite_tl.models.registry."""
import pytest

from tflite_tl._compat import keras
from tflite_tl import models
from tflite_tl.models import registry


def test_lists_the_zoo():
  assert set(models.list_models()) >= {"mcunet", "mobilenet_v2",
                                       "proxyless_mobile", "tiny"}
  assert models.list_models() == sorted(models.list_models())


@pytest.mark.parametrize("name", ["mcunet", "mobilenet_v2", "proxyless_mobile",
                                  "tiny"])
def test_every_builder_takes_the_common_arguments(name):
  model = models.get_model(name, resolution=32, input_channels=1,
                           num_classes=7)
  assert model.input_shape == (None, 32, 32, 1)
  assert model.output_shape == (None, 7)
  assert len({l.name for l in model.layers}) == len(model.layers)


def test_unknown_name_lists_known_ones():
  with pytest.raises(ValueError, match="mobilenet_v2.*proxyless_mobile"):
    models.get_model("resnet50")


def test_unknown_argument_lists_accepted_ones():
  with pytest.raises(ValueError, match="width_multiplier.*accepts"):
    models.get_model("proxyless_mobile", width_multiplier=0.5)


def test_register_user_model(monkeypatch):
  monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))

  def linear(resolution=8, input_channels=1, num_classes=2):
    inputs = keras.Input((resolution, resolution, input_channels))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

  models.register_model("linear", linear)
  assert "linear" in models.list_models()
  assert models.get_model("linear", num_classes=3).output_shape == (None, 3)
  with pytest.raises(ValueError, match="already registered"):
    models.register_model("linear", linear)
  models.register_model("linear", linear, overwrite=True)
  with pytest.raises(TypeError, match="callable"):
    models.register_model("other", 42)
