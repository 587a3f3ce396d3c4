"""ReLU / ReLU6 whose backward pass reads a bool mask stored in the forward pass.

The mask (1 byte per element in TFLM, the smallest builtin type) replaces the
float pre-activation (4 bytes) that TF's ``ReluGrad`` (a Flex op) would keep;
the backward pass is a SELECT_V2 of the output gradient and a scalar zero.
The mask is read off the *output* (y > 0, and y < max for a clipped ReLU;
equal to the mask of the input, boundaries included), so the pre-activation
has no other consumer and the converter fuses the activation into the
preceding CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED.
"""
from typing import Optional

from tflite_tl._compat import tf


def make_relu(*, max_value: Optional[float], need_input_grad: bool):
  """Builds ``relu(x)`` (clipped at ``max_value`` if given)."""

  @tf.custom_gradient
  def relu(x):
    if max_value is None:
      y = tf.nn.relu(x)
    elif max_value == 6.0:
      y = tf.nn.relu6(x)
    else:
      y = tf.minimum(tf.nn.relu(x), max_value)
    mask = None
    if need_input_grad:
      mask = y > 0.0
      if max_value is not None:
        mask = tf.logical_and(mask, y < max_value)
      with tf.control_dependencies([mask]):
        y = tf.identity(y)

    def grad(dy):
      if mask is None:
        return None
      return tf.where(mask, dy, tf.zeros([], dy.dtype))

    return y, grad

  return relu
