"""Hard-sigmoid and hard-swish as layers (MobileNetV3, Howard et al. 2019).

``keras.applications.MobileNetV3*`` builds both from TensorFlow operators
(``x + 3.0``, ``ReLU(6.0)``, ``* (1.0 / 6.0)``, ``Multiply``), which appear in
the functional graph as four anonymous layers per activation.
:func:`tflite_tl.rewrite.canonicalize` replaces each such group by one of
these layers, which compute exactly the same float32 expression:

    hard_sigmoid(x) = relu6(x + 3) * (1/6)
    hard_swish(x)   = x * hard_sigmoid(x)

As single layers they are recognised by the block finder (lite residual
insertion), costed by the memory model (hard-swish keeps its input for the
backward pass, hard-sigmoid a 1-bit mask like ReLU6) and lowered to TFLM's
HARD_SWISH builtin.
"""
from tflite_tl._compat import keras
from tflite_tl._compat import tf

_PACKAGE = "tflite_tl"
_ONE_SIXTH = 1.0 / 6.0


def hard_sigmoid(x):
  """relu6(x + 3) / 6, written as keras.applications.MobileNetV3 does."""
  return tf.nn.relu6(x + 3.0) * _ONE_SIXTH


def hard_swish(x):
  """x * relu6(x + 3) / 6, written as keras.applications.MobileNetV3 does."""
  return x * hard_sigmoid(x)


@keras.utils.register_keras_serializable(package=_PACKAGE)
class HardSigmoid(keras.layers.Layer):
  """``relu6(x + 3) / 6`` (not Keras' ``hard_sigmoid``, which is 0.2 x + 0.5)."""

  def call(self, inputs):
    return hard_sigmoid(inputs)

  def compute_output_shape(self, input_shape):
    return input_shape


@keras.utils.register_keras_serializable(package=_PACKAGE)
class HardSwish(keras.layers.Layer):
  """``x * relu6(x + 3) / 6``."""

  def call(self, inputs):
    return hard_swish(inputs)

  def compute_output_shape(self, input_shape):
    return input_shape
