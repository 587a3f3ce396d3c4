"""Average pooling and global average pooling with builtin-only backward passes.

AveragePooling2D with pool == strides (non-overlapping windows): the gradient
is RESIZE_NEAREST_NEIGHBOR of dy by the pool factor, divided by the window
area, zero-padded where VALID pooling dropped trailing rows/columns.
GlobalAveragePooling2D: dy reshaped to [N,1,1,C] times a constant 1/(H*W)
of shape [1,H,W,1] (a broadcasting MUL; TFLM has no TILE).
Neither keeps anything for the backward pass.
"""
import numpy as np

from tflite_tl._compat import tf
from tflite_tl.lower.ops._util import window_padding


def make_average_pool(*, in_shape, pool, padding: str, need_input_grad: bool):
  """Builds ``pool(x)`` for non-overlapping windows ``pool`` = (ph, pw)."""
  _, h, w, _ = in_shape
  ph, pw = pool
  oh, _, _ = window_padding(padding, h, ph, ph)
  ow, _, _ = window_padding(padding, w, pw, pw)
  if padding.upper() == "SAME" and (h % ph or w % pw):
    raise ValueError(
        "SAME average pooling is supported only when the input size is a "
        f"multiple of the pool size; got {h}x{w} with pool {ph}x{pw}.")

  @tf.custom_gradient
  def pool_fn(x):
    y = tf.nn.avg_pool2d(x, [ph, pw], [ph, pw], padding.upper())

    def grad(dy):
      if not need_input_grad:
        return None
      # Integer up-scaling: every output pixel copies its window's gradient.
      up = tf.image.resize(dy, [oh * ph, ow * pw], method="nearest")
      dx = up * (1.0 / (ph * pw))
      if oh * ph != h or ow * pw != w:
        dx = tf.pad(dx, [[0, 0], [0, h - oh * ph], [0, w - ow * pw], [0, 0]])
      return dx

    return y, grad

  return pool_fn


def make_global_average_pool(*, in_shape, keepdims: bool,
                             need_input_grad: bool):
  """Builds ``gap(x)`` -> [N,C] (or [N,1,1,C] with ``keepdims``)."""
  n, h, w, c = in_shape
  spread = tf.constant(np.full([1, h, w, 1], 1.0 / (h * w), np.float32))

  @tf.custom_gradient
  def gap(x):
    y = tf.reduce_mean(x, axis=[1, 2], keepdims=keepdims)

    def grad(dy):
      if not need_input_grad:
        return None
      return tf.reshape(dy, [n, 1, 1, c]) * spread

    return y, grad

  return gap
