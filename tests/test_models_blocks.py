"""Tests for tflite_tl.models.blocks."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.models import blocks


@pytest.mark.parametrize("value,expected", [
    (32 * 0.35, 16), (16 * 0.35, 8), (24 * 0.35, 8), (96 * 0.35, 32),
    (320 * 0.35, 112), (1280 * 1.4, 1792), (3, 8), (20, 24), (17, 16)])
def test_make_divisible_matches_mobilenet_rule(value, expected):
  assert blocks.make_divisible(value) == expected


def _layer_types(model):
  return [type(l).__name__ for l in model.layers[1:]]


def test_inverted_residual_with_expansion_and_residual():
  inputs = keras.Input((8, 8, 16))
  outputs = blocks.inverted_residual(inputs, 16, 5, 1, 3, name="b")
  model = keras.Model(inputs, outputs)
  assert _layer_types(model) == [
      "Conv2D", "BatchNormalization", "ReLU", "DepthwiseConv2D",
      "BatchNormalization", "ReLU", "Conv2D", "BatchNormalization", "Add"]
  assert model.get_layer("b_expand").filters == 48
  assert model.get_layer("b_dw").kernel_size == (5, 5)
  assert model.get_layer("b_dw_relu").max_value == 6.0
  assert not model.get_layer("b_expand").use_bias
  assert model.output_shape == (None, 8, 8, 16)


def test_inverted_residual_without_expansion_or_residual():
  inputs = keras.Input((8, 8, 16))
  outputs = blocks.inverted_residual(inputs, 24, 3, 2, 1, name="b")
  model = keras.Model(inputs, outputs)
  assert _layer_types(model) == [
      "DepthwiseConv2D", "BatchNormalization", "ReLU", "Conv2D",
      "BatchNormalization"]
  assert model.output_shape == (None, 4, 4, 24)


def test_explicit_hidden_width_overrides_ratio():
  inputs = keras.Input((8, 8, 8))
  outputs = blocks.inverted_residual(inputs, 8, 3, 1, 3,
                                     name="b", expanded_channels=20)
  model = keras.Model(inputs, outputs)
  assert model.get_layer("b_expand").filters == 20


def test_head_emits_logits_without_softmax():
  inputs = keras.Input((4, 4, 8))
  model = keras.Model(inputs, blocks.classifier_head(inputs, 5, 0.2))
  assert model.layers[-1].activation is keras.activations.linear
  logits = model(np.full((1, 4, 4, 8), 3.0, np.float32)).numpy()
  assert logits.shape == (1, 5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(resolution=4, input_channels=1, num_classes=10), "resolution"),
    (dict(resolution=32, input_channels=0, num_classes=10), "input_channels"),
    (dict(resolution=32, input_channels=1, num_classes=1), "num_classes"),
    (dict(resolution=32.0, input_channels=1, num_classes=10), "resolution")])
def test_check_input_spec_names_the_problem(kwargs, match):
  with pytest.raises(ValueError, match=match):
    blocks.check_input_spec("net", **kwargs)


def test_check_width_multiplier():
  with pytest.raises(ValueError, match="width_multiplier"):
    blocks.check_width_multiplier("net", 0)
