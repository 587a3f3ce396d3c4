"""Single place that imports TensorFlow with Keras 2 (tf-keras) active.

tensorflow-model-optimization and everything in tflite-tl use the Keras 2 API.
TensorFlow picks its Keras flavour when it is first imported, from the
environment variable ``TF_USE_LEGACY_KERAS``; setting it afterwards has no
effect. Every module of the package imports ``tf`` and ``keras`` from here.
"""
import os
import sys

_LEGACY_KERAS_VAR = "TF_USE_LEGACY_KERAS"


class KerasVersionError(ImportError):
  """TensorFlow was imported with Keras 3 before tflite_tl."""


def _tf_already_uses_keras3() -> bool:
  if "tensorflow" not in sys.modules:
    return False
  return os.environ.get(_LEGACY_KERAS_VAR, "") not in ("1", "true", "True")


if _tf_already_uses_keras3():
  raise KerasVersionError(
      "TensorFlow was imported with Keras 3 before tflite_tl. tflite-tl needs "
      "Keras 2 (tf-keras). Import tflite_tl before tensorflow, or set "
      f"{_LEGACY_KERAS_VAR}=1 in the environment before starting Python.")

os.environ[_LEGACY_KERAS_VAR] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN reorders float reductions between runs; exports must be byte-identical.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras", "KerasVersionError"]
