"""Whether a model can be lowered, checked before any conversion.

``check_lowerable(model)`` builds the forward program of the train step
(each layer's lowering rule with the model's real trainability) without
tracing or converting anything, so a layer without a rule, or a layer
configuration a rule rejects, is reported in about a second instead of after
host training and a converter run.
"""
from tflite_tl._compat import keras
from tflite_tl.lower.graph import ForwardProgram
from tflite_tl.lower.layers import UnsupportedLayerError
from tflite_tl.lower.extra_rules import CANONICALIZED_OPS


def _tf_op_layers(model):
  return [l for l in model.layers if type(l).__name__ == "TFOpLambda"]


def check_lowerable(model: keras.Model, batch_size: int = 1) -> None:
  """Raises UnsupportedLayerError naming the first layer that cannot be lowered.

  Args:
    model: the model to train (``model.trainable_weights`` decides which
      gradients the rules must provide).
    batch_size: batch of the train step (rules see static shapes).
  """
  raw = _tf_op_layers(model)
  if raw:
    layer = raw[0]
    function = layer.get_config().get("function")
    raise UnsupportedLayerError(
        f"Layer '{layer.name}' (TFOpLambda: the TensorFlow operator "
        f"tf.{function} called on a Keras tensor) has no builtin-only "
        f"lowering. tflite_tl.rewrite.canonicalize (run by apply_method) "
        f"turns these into layers: {CANONICALIZED_OPS}; write other "
        "operations as Keras layers.")
  trained = {w.ref() for w in model.trainable_weights}
  ForwardProgram(model, batch_size, trained, weight_source=lambda w: None,
                 with_gradients=True)
