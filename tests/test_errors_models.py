"""Catalogue of bad input, models (docs/errors.md#models): Keras 3 objects
and files, layers that do not lower, tiny inputs, outputs that are not a
class vector, through apply_method, lower_model and model files."""
import os
import subprocess
import sys
import textwrap

import pytest

from tflite_tl import lower
from tflite_tl import models
from tflite_tl import rewrite
from tflite_tl._compat import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cnn(size=8, channels=1):
  inputs = keras.Input((size, size, channels))
  x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def _conv_lstm():
  inputs = keras.Input((8, 8, 1))
  x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
  x = keras.layers.Reshape((36, 4))(x)
  x = keras.layers.LSTM(4, name="lstm")(x)
  return keras.Model(inputs, keras.layers.Dense(3)(x))


def _conv3d():
  inputs = keras.Input((8, 8, 8, 1))
  x = keras.layers.Conv3D(4, 3, name="conv3d")(inputs)
  x = keras.layers.GlobalAveragePooling3D()(x)
  return keras.Model(inputs, keras.layers.Dense(3)(x))


def _no_class_vector():
  inputs = keras.Input((8, 8, 1))
  return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs))


@pytest.fixture(scope="module")
def keras3(tmp_path_factory):
  """(a .keras file saved by Keras 3, what apply_method said of a Keras 3
  model), from a child process: this one runs tf-keras only."""
  path = str(tmp_path_factory.mktemp("keras3") / "k3.keras")
  script = textwrap.dedent(f"""
      import tflite_tl
      from tflite_tl import rewrite
      import keras
      inputs = keras.Input((8, 8, 1))
      x = keras.layers.Conv2D(4, 3)(inputs)
      x = keras.layers.GlobalAveragePooling2D()(x)
      model = keras.Model(inputs, keras.layers.Dense(3)(x))
      model.save({path!r})
      try:
        rewrite.apply_method(model, "ft_last", num_classes=3)
      except ValueError as e:
        print("ERROR", e)
      """)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                        text=True, check=False, cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT))
  if proc.returncode or "ERROR" not in proc.stdout:
    pytest.skip(f"Keras 3 is not usable here: {proc.stderr[-300:]}")
  return path, proc.stdout.split("ERROR", 1)[1].strip()


def test_keras3_object_is_refused_by_apply_method(keras3):
  assert keras3[1].startswith("canonicalize: expected a tf-keras Model, got "
                              "Functional. Import tflite_tl before "
                              "tensorflow"), keras3[1]


def test_keras3_file_is_refused(keras3):
  with pytest.raises(models.ModelFileError, match=r"k3.keras: saved by Keras "
                     r"3\.[0-9.]+ \(Keras 3\), which tf-keras cannot load"):
    models.read_model_file(keras3[0])


def test_lstm_layer_does_not_lower_and_is_named():
  model = rewrite.apply_method(_conv_lstm(), "ft_last", num_classes=3)
  with pytest.raises(lower.UnsupportedLayerError, match="Layer 'lstm' of "
                     "class .*LSTM has no builtin-only lowering. Supported "
                     "layer classes: "):
    lower.check_lowerable(model)


def test_conv3d_model_is_refused(tmp_path):
  model = rewrite.apply_method(_conv3d(), "ft_last", num_classes=3)
  with pytest.raises(lower.UnsupportedLayerError, match=r"input has shape "
                     r"\(None, 8, 8, 8, 1\); lowering needs NHWC images"):
    lower.check_lowerable(model)
  path = str(tmp_path / "c3d.keras")
  _conv3d().save(path)
  with pytest.raises(models.ModelFileError, match=r"c3d.keras: not a CNN "
                     r"classifier: input shapes \[\(None, 8, 8, 8, 1\)\]"):
    models.read_model_file(path)


def test_one_pixel_input_file_needs_a_resolution(tmp_path):
  path = str(tmp_path / "one.keras")
  _cnn(size=1, channels=3).save(path)
  with pytest.raises(models.ModelFileError, match="one.keras: the input is "
                     "1x1 px; supported inputs are at least 8x8 px. Pass a "
                     r"resolution \(--resolution=32\)"):
    models.read_model_file(path)
  assert models.read_model_file(path, resolution=16).size == (16, 16)


@pytest.mark.parametrize("resolution", [0, 1])
def test_zero_or_one_pixel_resolution(tmp_path, resolution):
  path = str(tmp_path / "cnn.keras")
  _cnn().save(path)
  with pytest.raises(models.ModelFileError, match="resolution must be an "
                     f"integer >= 8, got {resolution}"):
    models.read_model_file(path, resolution=resolution)
  with pytest.raises(ValueError, match="tiny: resolution must be an integer "
                     f">= 8 pixels, got {resolution}"):
    models.get_model("tiny", resolution=resolution)


def test_output_that_is_not_a_class_vector(tmp_path):
  with pytest.raises(ValueError, match="the output comes from layer 'conv' "
                     r"\(Conv2D\).*the classifier must be a Dense layer"):
    rewrite.apply_method(_no_class_vector(), "ft_last", num_classes=3)
  path = str(tmp_path / "fcn.keras")
  _no_class_vector().save(path)
  with pytest.raises(models.ModelFileError, match="not a CNN classifier: "
                     "output shapes"):
    models.read_model_file(path)


@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.5])
def test_apply_method_needs_two_classes_or_more(num_classes):
  with pytest.raises(ValueError, match="num_classes must be an integer >= 2 "
                     rf"\(a classifier tells two classes or more apart\), got "
                     rf"{num_classes}"):
    rewrite.apply_method(_cnn(), "ft_last", num_classes=num_classes)


def test_apply_method_unknown_method_and_non_model():
  with pytest.raises(ValueError, match="Unknown transfer-learning method "
                     "'nope'; registered methods: ft_full"):
    rewrite.apply_method(_cnn(), "nope", num_classes=3)
  with pytest.raises(ValueError, match="expected a tf-keras Model, got str"):
    rewrite.apply_method("tiny", "ft_last", num_classes=3)


@pytest.mark.parametrize("kw, message", [
    ({"batch_size": 0}, "batch_size must be >= 1, got 0."),
    ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0, "
     "got -1.0."),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number "
     "> 0, got nan."),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number "
     "> 0, got inf."),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5."),
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\), got "
     "1.0."),
    ({"kernels": "cuda"}, "kernels must be one of"),
    ({"precision": "int4"}, "precision must be one of"),
])
def test_lower_model_arguments(kw, message):
  args = dict(batch_size=1, learning_rate=0.01)
  args.update(kw)
  model = rewrite.apply_method(_cnn(), "ft_last", num_classes=3)
  with pytest.raises(ValueError, match=message):
    lower.lower_model(model, **args)


def test_lower_model_refuses_a_non_keras_model():
  with pytest.raises(ValueError, match="lower_model: expected a tf-keras "
                     "Model, got str"):
    lower.lower_model("tiny", batch_size=1, learning_rate=0.01)


def test_model_file_missing_and_not_a_model(tmp_path):
  with pytest.raises(models.ModelFileError, match="nowhere.keras: no such "
                     "file or directory"):
    models.read_model_file(str(tmp_path / "nowhere.keras"))
  path = tmp_path / "junk.h5"
  path.write_bytes(b"not hdf5 at all")
  with pytest.raises(models.ModelFileError, match="junk.h5: not a readable "
                     "HDF5 file"):
    models.read_model_file(str(path))
