"""tflite-tl: on-device transfer learning for microcontrollers on stock TFLM.

Importing this package selects Keras 2 (tf-keras) for TensorFlow; import it
before ``tensorflow``. TensorFlow itself loads on first use of the API below.

The pipeline, one concept per subpackage:
  models   model zoo and shipped pretrained backbones
  data     offline datasets, resizing, splits, few-shot sampling
  train    host training of exactly a model's trainable weights
  rewrite  TinyTL passes (BN folding, bias training, lite residual) and methods
  memory   analytic (modelled) training-memory accounting, TinyTL style
  lower    the training step lowered to a TFLM-builtin .tflite
  tflm     the real TFLM interpreter in a subprocess: runs, parity, arenas
  devices  board profiles (SRAM, flash, PSRAM) as extendable data
  export   Arduino library / ESP-IDF component generation
"""
import importlib

from tflite_tl._keras_env import KerasVersionError
from tflite_tl._keras_env import select_legacy_keras

select_legacy_keras()

__version__ = "0.1.0"

_SUBPACKAGES = ("data", "devices", "export", "kernels", "layers", "lower",
                "memory", "models", "rewrite", "tflm", "train")

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
