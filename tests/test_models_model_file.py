"""Loading a user's own model file: formats, rebuild at a resolution, and the
one-line errors for files that cannot be used."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from own_model_builders import mobilenet_v3_mini
from own_model_builders import sequential_cnn
from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.models import ModelFileError
from tflite_tl.models import is_model_path
from tflite_tl.models import load_model_file
from tflite_tl.models import read_model_file


def _small_cnn(size=None):
  keras.utils.set_random_seed(0)
  inputs = keras.Input((size, size, 3))
  x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(4)(x), name="small_cnn")


def _images(size, channels=3, n=2):
  return np.random.RandomState(0).rand(n, size, size, channels).astype(
      np.float32)


def _assert_one_line_naming(error, path):
  message = str(error.value)
  assert "\n" not in message and message.startswith(str(path)), message


@pytest.mark.parametrize("suffix,file_format", [
    (".keras", "keras"), (".h5", "h5"), ("_savedmodel", "saved_model")])
def test_each_format_loads_and_rebuilds_at_a_resolution(tmp_path, suffix,
                                                         file_format):
  model = _small_cnn(24)
  path = str(tmp_path / f"cnn{suffix}")
  model.save(path)
  same = read_model_file(path)
  assert (same.format, same.size, same.rebuilt, same.notes) == (
      file_format, (24, 24), False, ())
  np.testing.assert_allclose(same.model(_images(24)).numpy(),
                             model(_images(24)).numpy(), rtol=1e-6)
  resized = read_model_file(path, resolution=40)
  assert resized.rebuilt and resized.size == (40, 40)
  assert resized.native_size == (24, 24)
  # The same weights: a fully convolutional model computes the same
  # function at the new size as the original does there.
  reference = keras.models.clone_model(model, input_tensors=keras.Input(
      (40, 40, 3)))
  reference.set_weights(model.get_weights())
  np.testing.assert_allclose(resized.model(_images(40)).numpy(),
                             reference(_images(40)).numpy(), rtol=1e-5,
                             atol=1e-6)


def test_model_without_fixed_size_needs_a_resolution(tmp_path):
  path = str(tmp_path / "any_size.keras")
  _small_cnn(None).save(path)
  with pytest.raises(ModelFileError, match="no fixed input size") as e:
    read_model_file(path)
  _assert_one_line_naming(e, path)
  assert load_model_file(path, resolution=32).inputs[0].shape[1:3] == (32, 32)


def test_flatten_dense_model_keeps_its_own_size_and_says_so(tmp_path):
  path = str(tmp_path / "mnist_cnn.keras")
  sequential_cnn(20).save(path)
  loaded = read_model_file(path, resolution=32)
  assert loaded.size == (20, 20) and not loaded.rebuilt
  (note,) = loaded.notes
  assert note.startswith(path) and "not fully convolutional" in note
  assert "(Dense)" in note and "20x20 px" in note and "32 px" in note


def test_pixel_rescaling_is_adapted_to_unit_range_images(tmp_path):
  keras.utils.set_random_seed(0)
  model = mobilenet_v3_mini()  # Rescaling(1/127.5, -1) for 0-255 pixels
  path = str(tmp_path / "v3.h5")
  model.save(path)
  kept = read_model_file(path)
  assert kept.notes == ()
  adapted = read_model_file(path, unit_range_input=True)
  (note,) = adapted.notes
  assert "0-255" in note and "[0, 1]" in note
  x = _images(32)
  np.testing.assert_allclose(adapted.model(x).numpy(),
                             model(x * 255.0).numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory):
  """A .keras and an .h5 file written by Keras 3 (in a child process,
  since this one runs tf-keras)."""
  directory = tmp_path_factory.mktemp("keras3")
  script = textwrap.dedent(f"""
      import keras
      m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                            keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(3)])
      m.save({str(directory / "k3.keras")!r})
      m.save({str(directory / "k3.h5")!r})
      """)
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  proc = subprocess.run([sys.executable, "-c", script], env=env,
                        capture_output=True, text=True, check=False)
  if proc.returncode:
    pytest.skip(f"Keras 3 is not usable here: {proc.stderr[-300:]}")
  return directory


@pytest.mark.parametrize("name", ["k3.keras", "k3.h5"])
def test_keras3_file_is_refused_in_one_line(keras3_files, name):
  path = str(keras3_files / name)
  with pytest.raises(ModelFileError, match=r"Keras 3\.\d+.*tf-keras") as e:
    read_model_file(path)
  _assert_one_line_naming(e, path)


def test_unusable_files_each_get_one_line(tmp_path):
  model = _small_cnn(16)
  weights = str(tmp_path / "weights.h5")
  model.save_weights(weights)
  plain_dir = tmp_path / "not_a_model"
  plain_dir.mkdir()
  module = tf.Module()
  module.v = tf.Variable(1.0)
  raw_saved_model = str(tmp_path / "raw_savedmodel")
  tf.saved_model.save(module, raw_saved_model)
  broken = tmp_path / "broken.keras"
  broken.write_bytes(b"not a zip")
  cases = {
      weights: "weights only",
      str(tmp_path / "missing.keras"): "no such file",
      str(plain_dir): "without saved_model.pb",
      raw_saved_model: "without Keras metadata",
      str(broken): "not a readable .keras archive",
      str(tmp_path / "model.onnx"): "no such file",
  }
  for path, expected in cases.items():
    with pytest.raises(ModelFileError, match=expected) as e:
      read_model_file(path)
    _assert_one_line_naming(e, path)


def test_custom_layer_that_tf_keras_cannot_rebuild_is_named(tmp_path):

  @keras.utils.register_keras_serializable(package="user_pkg")
  class Mystery(keras.layers.Layer):

    def call(self, inputs):
      return inputs * 2.0

  inputs = keras.Input((8, 8, 3))
  x = Mystery(name="mystery_layer")(keras.layers.Conv2D(4, 3)(inputs))
  x = keras.layers.GlobalAveragePooling2D()(x)
  path = str(tmp_path / "custom.keras")
  keras.Model(inputs, keras.layers.Dense(2)(x)).save(path)
  del keras.utils.get_custom_objects()["user_pkg>Mystery"]
  with pytest.raises(ModelFileError,
                     match="layer 'mystery_layer' .*Mystery.*not a tf-keras "
                     "layer") as e:
    read_model_file(path)
  _assert_one_line_naming(e, path)


def test_lambda_layer_in_a_keras_file_is_named(tmp_path):
  inputs = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(4, 3)(inputs)
  x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  path = str(tmp_path / "lambda.keras")
  keras.Model(inputs, keras.layers.Dense(2)(x)).save(path)
  with pytest.raises(ModelFileError,
                     match="layer 'double' \\(Lambda\\) holds arbitrary "
                     "Python code") as e:
    read_model_file(path)
  _assert_one_line_naming(e, path)


@pytest.mark.parametrize("build,expected", [
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(4)]), "not a CNN"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)),
                               keras.layers.Conv2D(4, 3)]),
     r"not a CNN classifier: output shapes \[\(None, 6, 6, 4\)\]"),
    (lambda: keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)]),
     r"not a CNN classifier: input shapes \[\(None, 8\)\]"),
])
def test_models_that_are_not_cnn_classifiers_are_refused(tmp_path, build,
                                                         expected):
  path = str(tmp_path / "model.keras")
  build().save(path)
  with pytest.raises(ModelFileError, match=expected) as e:
    read_model_file(path)
  _assert_one_line_naming(e, path)


def test_model_paths_are_told_from_zoo_names(tmp_path):
  assert is_model_path("mine.keras") and is_model_path("dir/saved_model")
  assert is_model_path(str(tmp_path))
  assert not is_model_path("mobilenet_v2") and not is_model_path("tiny")
