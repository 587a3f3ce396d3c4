"""Selects Keras 2 (tf-keras) for TensorFlow without importing TensorFlow.

TensorFlow reads ``TF_USE_LEGACY_KERAS`` when it is first imported; setting it
afterwards has no effect. tensorflow-model-optimization and all of tflite-tl
use the Keras 2 API, so the variable must be set before TensorFlow loads.
Kept free of TensorFlow imports so that ``import tflite_tl`` (and the TFLM
worker processes) stay cheap.
"""
import os
import sys

LEGACY_KERAS_VAR = "TF_USE_LEGACY_KERAS"


class KerasVersionError(ImportError):
  """TensorFlow was imported with Keras 3 before tflite_tl."""


def _legacy_keras_requested() -> bool:
  return os.environ.get(LEGACY_KERAS_VAR, "") in ("1", "true", "True")


def select_legacy_keras() -> None:
  """Sets the environment so that TensorFlow uses tf-keras (Keras 2).

  Raises:
    KerasVersionError: TensorFlow is already imported with Keras 3 active.
  """
  if "tensorflow" in sys.modules and not _legacy_keras_requested():
    raise KerasVersionError(
        "TensorFlow was imported with Keras 3 before tflite_tl. tflite-tl "
        "needs Keras 2 (tf-keras): import tflite_tl before tensorflow, or set "
        f"{LEGACY_KERAS_VAR}=1 in the environment before starting Python.")
  os.environ[LEGACY_KERAS_VAR] = "1"
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  # oneDNN reorders float reductions between runs; exports must be
  # byte-identical for the same inputs and seed.
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
