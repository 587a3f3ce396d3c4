"""The float predict model the board runs after training.

The lowering's ``infer_tflite`` reads its parameters only, so the converter
freezes them into constants: predictions could never reflect on-device
training. The predict model re-assigns every trained parameter to itself after
the forward pass, which keeps them resource variables (VAR_HANDLE with the
train model's names). The trainer copies trained values into them; the extra
cost per invoke is one in-place copy of the (small) trained parameter set.
"""
from tflite_tl._compat import tf


def predict_tflite(lowered) -> bytes:
  """Batch-1 float forward of ``lowered.module`` with the parameters as variables.

  Build it before anything runs ``module.train_step`` (the variables'
  current values become the model's initial values).
  """
  from tflite_tl.lower.convert import convert_function  # pylint: disable=import-outside-toplevel
  module = lowered.module
  shape = [1] + list(module.image_shape)

  @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, "images")])
  def predict(images):
    out = module.infer(images)
    for var in module.params:
      var.assign(var)
    return out

  return convert_function(module, predict)
