"""Converts the train-step module's functions to .tflite flatbuffers.

Resource variables stay variables (``experimental_enable_resource_variables``):
subgraph 0 is the function, and an init subgraph run once by CALL_ONCE assigns
each variable its initial value (the trained parameters). Only TFLite builtin
ops are allowed, so a missing builtin lowering fails here rather than on a
device.
"""
from tflite_tl._compat import tf


def convert_function(module: tf.Module, function) -> bytes:
  """Flatbuffer bytes of ``function`` (a tf.function of ``module``)."""
  concrete = function.get_concrete_function()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [concrete], module)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  converter.experimental_enable_resource_variables = True
  return bytes(converter.convert())
