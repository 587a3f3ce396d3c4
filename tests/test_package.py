"""The package entry point: Keras 2 selection and the curated public API."""
import os
import subprocess
import sys

import pytest

import tflite_tl

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code):
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env["PYTHONPATH"] = _REPO
  return subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, env=env, timeout=300)


def test_importing_selects_keras2_before_tensorflow():
  result = _run("import tflite_tl, sys\n"
                "assert 'tensorflow' not in sys.modules\n"
                "from tflite_tl._compat import tf, keras\n"
                "print(keras.__version__, tf.keras.__name__)")
  assert result.returncode == 0, result.stderr
  version, tf_keras_module = result.stdout.split()
  assert version.startswith("2.")
  assert tf_keras_module.startswith("tf_keras")


def test_tensorflow_imported_with_keras3_first_is_a_clear_error():
  result = _run("import tensorflow\nimport tflite_tl")
  assert result.returncode != 0
  assert "KerasVersionError" in result.stderr
  assert "import tflite_tl before tensorflow" in result.stderr


@pytest.mark.parametrize("name", sorted(tflite_tl._API))
def test_curated_api_resolves(name):
  assert callable(getattr(tflite_tl, name))


def test_subpackages_resolve_and_unknown_names_fail():
  assert tflite_tl.rewrite.apply_method is tflite_tl.apply_method
  with pytest.raises(AttributeError, match="no_such_thing"):
    tflite_tl.no_such_thing  # pylint: disable=pointless-statement
