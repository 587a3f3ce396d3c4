"""tflite-tl: on-device transfer learning for microcontrollers on stock TFLM.

Importing this package selects Keras 2 (tf-keras) for TensorFlow; import it
before ``tensorflow``. TensorFlow itself loads on first use of the API below.

The stages, one concept per subpackage, in the order data flows (no module
imports a later stage; tests/test_import_graph.py checks it):
  models, data, train  model zoo and shipped backbones; offline datasets;
            host training of exactly a model's trainable weights
  rewrite   TinyTL passes (BN folding, bias training, lite residual), methods
  memory    analytic (modelled) training-memory accounting, TinyTL style
  lower     train step and predict model as TFLM-builtin .tflite; int8 model
  tflm      the real TFLM interpreter in a subprocess: runs and arenas
  verify    TF vs TFLM parity of the lowered models, one error measure
  firmware  Arduino library / ESP-IDF component generation, device fit
  pipeline  the export: every stage above, in order (``python -m export``)
Shared by all: ``devices`` (board profiles as data), ``layers`` (Keras
layers), ``kernels`` (C++ TL ops for TF), ``flatbuffer`` (the one .tflite
reader), ``atomic`` (all-or-nothing writes) and ``console`` (quiet CLI runs).
"""
import importlib

from tflite_tl._keras_env import KerasVersionError
from tflite_tl._keras_env import select_legacy_keras

select_legacy_keras()

__version__ = "0.1.0"

_SUBPACKAGES = ("atomic", "data", "devices", "firmware", "flatbuffer",
                "kernels", "layers", "lower", "memory", "models", "pipeline",
                "rewrite", "tflm", "train", "verify")

# Curated public API: name -> (module, attribute).
_API = {
    "get_model": ("tflite_tl.models", "get_model"),
    "list_models": ("tflite_tl.models", "list_models"),
    "load_pretrained": ("tflite_tl.models", "load_pretrained"),
    "load_dataset": ("tflite_tl.data", "load"),
    "few_shot": ("tflite_tl.data", "few_shot"),
    "fit": ("tflite_tl.train", "fit"),
    "evaluate": ("tflite_tl.train", "evaluate"),
    "apply_method": ("tflite_tl.rewrite", "apply_method"),
    "list_methods": ("tflite_tl.rewrite", "list_methods"),
    "register_method": ("tflite_tl.rewrite", "register_method"),
    "insert_lite_residual": ("tflite_tl.rewrite", "insert_lite_residual"),
    "fold_batch_norm": ("tflite_tl.rewrite", "fold_batch_norm"),
    "training_memory": ("tflite_tl.memory", "training_memory"),
    "lower_model": ("tflite_tl.lower", "lower_model"),
    "measure_arena": ("tflite_tl.tflm", "measure_arena"),
    "run_train_steps": ("tflite_tl.tflm", "run_train_steps"),
    "quantize_int8": ("tflite_tl.lower", "quantize_int8"),
    "run_export": ("tflite_tl.pipeline", "run_export"),
    "get_device": ("tflite_tl.devices", "get_device"),
    "list_devices": ("tflite_tl.devices", "list_devices"),
}

__all__ = ["KerasVersionError", *_SUBPACKAGES, *_API]


def __getattr__(name):
  if name in _SUBPACKAGES:
    return importlib.import_module(f"tflite_tl.{name}")
  if name in _API:
    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)
  raise AttributeError(f"module 'tflite_tl' has no attribute {name!r}")


def __dir__():
  return sorted(__all__)
