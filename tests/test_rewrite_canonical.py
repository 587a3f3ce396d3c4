import numpy as np
import pytest

from own_model_builders import mobilenet_v2_mini
from own_model_builders import mobilenet_v3_mini
from tflite_tl import layers
from tflite_tl import rewrite
from tflite_tl._compat import keras
from tflite_tl._compat import tf


def _classes(model):
  return [type(l).__name__ for l in model.layers]


def _images(model, scale=1.0, n=2):
  shape = [n] + [int(d) for d in model.inputs[0].shape[1:]]
  return np.random.RandomState(0).rand(*shape).astype(np.float32) * scale


def test_keras_applications_hard_swish_and_classifier_become_layers():
  model = mobilenet_v3_mini()
  canonical = rewrite.canonicalize(model)
  classes = _classes(canonical)
  assert "TFOpLambda" not in classes
  # Stem, block-1/2 expansion, block-1/2 depthwise and the head's two convs.
  assert classes.count("HardSwish") == 7
  assert classes.count("HardSigmoid") == 3  # one per squeeze-excitation
  assert rewrite.find_classifier(canonical).name == "Logits"
  assert isinstance(canonical.get_layer("Logits"), keras.layers.Dense)
  x = _images(model, 255.0)
  # The same float32 expressions: bit-identical outputs.
  np.testing.assert_array_equal(canonical(x).numpy(), model(x).numpy())
  assert "TFOpLambda" in _classes(model)  # the input model is untouched


def test_scalar_tf_operators_become_rescaling():
  inputs = keras.Input((4, 4, 3))
  x = (inputs - 0.5) / 2.0
  x = 2.0 * x
  x = 1.0 - x
  x = x + np.array([0.1, 0.2, 0.3], np.float32)
  x = keras.layers.Conv2D(2, 1)(x)
  model = keras.Model(inputs, keras.layers.Dense(3)(
      keras.layers.GlobalAveragePooling2D()(x)))
  canonical = rewrite.canonicalize(model)
  assert _classes(canonical).count("Rescaling") == 5
  assert "TFOpLambda" not in _classes(canonical)
  x = _images(model)
  np.testing.assert_allclose(canonical(x).numpy(), model(x).numpy(),
                             rtol=1e-6, atol=1e-6)


def test_unsupported_tf_operator_is_kept_for_the_lowering_to_name():
  inputs = keras.Input((4, 4, 3))
  x = keras.layers.Conv2D(2, 1)(inputs)
  x = keras.layers.GlobalAveragePooling2D()(tf.math.tanh(x))
  canonical = rewrite.canonicalize(keras.Model(inputs, keras.layers.Dense(3)(x)))
  assert "TFOpLambda" in _classes(canonical)


def test_model_without_patterns_is_returned_as_is():
  inputs = keras.Input((4, 4, 3))
  x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 1)(inputs))
  model = keras.Model(inputs, keras.layers.Dense(3)(x))
  assert rewrite.canonicalize(model) is model


@pytest.mark.parametrize("style", ["sequential", "functional"])
def test_nested_backbone_is_inlined(style):
  keras.utils.set_random_seed(0)
  full = mobilenet_v2_mini()  # keras.applications' blocks, without the top
  base = keras.Model(full.inputs, full.get_layer("out_relu").output,
                     name="backbone")
  if style == "sequential":
    model = keras.Sequential([keras.Input((32, 32, 3)), base,
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4)])
  else:
    inputs = keras.Input((32, 32, 3))
    x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
  canonical = rewrite.canonicalize(model)
  assert not any(isinstance(l, keras.Model) for l in canonical.layers)
  assert len(canonical.layers) == len(base.layers) + 2
  x = _images(model)
  np.testing.assert_allclose(canonical(x).numpy(), model(x).numpy(),
                             rtol=1e-6, atol=1e-6)
  # And every method now applies (lite residual finds MobileNetV2's blocks).
  assert rewrite.apply_method(model, "tinytl_lb", num_classes=3)


def test_canonical_model_round_trips_through_a_keras_file(tmp_path):
  canonical = rewrite.canonicalize(mobilenet_v3_mini())
  path = str(tmp_path / "canonical.keras")
  canonical.save(path)
  loaded = keras.models.load_model(path, compile=False)
  assert isinstance(loaded.layers[[type(l) for l in loaded.layers].index(
      layers.HardSwish)], layers.HardSwish)
  x = _images(canonical, 255.0)
  np.testing.assert_array_equal(loaded(x).numpy(), canonical(x).numpy())
