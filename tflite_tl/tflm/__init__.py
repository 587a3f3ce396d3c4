"""Running lowered models in the real TFLM interpreter (tflite_micro), in a
subprocess, and measuring their arena with TFLM's recording allocator.

Names load on first use, so that ``python -m tflite_tl.tflm.build`` (which
builds TFLM from source) does not import TensorFlow.
"""
import importlib

_API = {
    "NonBuiltinOpError": "tflite_tl.lower.builtins",
    "check_builtin_only": "tflite_tl.lower.builtins",
    "op_counts": "tflite_tl.lower.builtins",
    "ArenaReport": "tflite_tl.tflm.arena",
    "parse_allocations": "tflite_tl.tflm.arena",
    "RunResult": "tflite_tl.tflm.runner",
    "TflmRuntimeError": "tflite_tl.tflm.runner",
    "TrainRun": "tflite_tl.tflm.runner",
    "measure_arena": "tflite_tl.tflm.runner",
    "run_model": "tflite_tl.tflm.runner",
    "run_train_steps": "tflite_tl.tflm.runner",
}

__all__ = sorted(_API)


def __getattr__(name):
  if name not in _API:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  value = getattr(importlib.import_module(_API[name]), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(list(globals()) + list(_API))
