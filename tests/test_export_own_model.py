"""`python -m export --model=PATH`: a user's own tf-keras model file."""
import json
import os
import subprocess
import sys

import pytest

from own_model_builders import sequential_cnn
from tflite_tl._compat import keras
from tflite_tl.lower import UnsupportedLayerError
from tflite_tl.lower import check_lowerable
from tflite_tl.rewrite import apply_method

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _export(tmp_path, *flags):
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "-m", "export", f"--out={out}", *flags],
      capture_output=True, text=True, cwd=ROOT, check=False,
      env=dict(os.environ, PYTHONPATH=ROOT))
  return proc, out


def _leaky_cnn():
  inputs = keras.Input((16, 16, 1))
  x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
  x = keras.layers.LeakyReLU(name="leaky")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_check_lowerable_names_the_layer_and_lists_what_is_supported():
  model = apply_method(_leaky_cnn(), "tinytl_b", num_classes=3)
  with pytest.raises(UnsupportedLayerError,
                     match="'leaky' of class .*LeakyReLU.*Supported layer "
                     "classes: .*HardSwish"):
    check_lowerable(model)


def test_cli_unsupported_layer_is_one_line_naming_file_layer_and_class(
    tmp_path):
  path = str(tmp_path / "leaky.keras")
  _leaky_cnn().save(path)
  proc, out = _export(tmp_path, f"--model={path}", "--method=tinytl_b",
                      "--finetune_epochs=0")
  assert proc.returncode == 1
  assert "Traceback" not in proc.stderr
  (line,) = [l for l in proc.stderr.splitlines()
             if l.startswith("export failed:")]
  assert line.startswith(f"export failed: {path}: Layer 'leaky'")
  assert "LeakyReLU" in line and "Supported layer classes" in line
  assert not out.exists()


def test_cli_missing_model_file_is_one_line(tmp_path):
  path = str(tmp_path / "nowhere.keras")
  proc, out = _export(tmp_path, f"--model={path}")
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  assert f"export failed: {path}: no such file" in proc.stderr
  assert not out.exists()


@pytest.mark.slow
def test_export_of_a_sequential_cnn_file_fits_the_nano(tmp_path):
  path = str(tmp_path / "mnist_cnn.keras")
  keras.utils.set_random_seed(0)
  sequential_cnn(28).save(path)
  proc, out = _export(tmp_path, f"--model={path}", "--resolution=32",
                      "--method=tinytl_b")
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Not fully convolutional: the export keeps 28 px and says so.
  assert "not fully convolutional" in proc.stderr
  report = json.loads((out / "report.json").read_text())
  assert report["config"]["model"] == "mnist_cnn.keras"
  assert report["config"]["model_file"] == path
  assert report["config"]["resolution"] == 28
  assert report["parity"]["train"]["max_rel_err_loss"] <= 1e-4
  assert "weights from the model file" in (out / "REPORT.md").read_text()
