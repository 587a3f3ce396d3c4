"""Bilinear resizing (half-pixel centres, as tf.image.resize and Keras'
UpSampling2D/Resizing use) with a builtin-only backward pass.

Bilinear resizing is separable and linear: y = R_h x R_w^T per channel. Its
adjoint applies R_h^T and R_w^T, done here as two FULLY_CONNECTED ops with
constant interpolation matrices (computed by resizing unit vectors with TF
itself, so they match the forward op exactly) between TRANSPOSEs. This covers
every scale factor, not just x2. Nothing is kept for the backward pass.
"""
import numpy as np

from tflite_tl._compat import tf


def interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out_size, in_size] matrix of 1-D half-pixel bilinear resizing."""
  basis = np.eye(in_size, dtype=np.float32).reshape(in_size, in_size, 1, 1)
  resized = tf.image.resize(basis, [out_size, 1], method="bilinear")
  return resized.numpy().reshape(in_size, out_size).T.copy()


def make_bilinear_resize(*, in_shape, out_hw, need_input_grad: bool):
  """Builds ``resize(x)`` -> [N, out_h, out_w, C]."""
  n, h, w, c = in_shape
  oh, ow = out_hw
  rh = tf.constant(interpolation_matrix(h, oh))  # [oh, h]
  rw = tf.constant(interpolation_matrix(w, ow))  # [ow, w]

  @tf.custom_gradient
  def resize(x):
    y = tf.image.resize(x, [oh, ow], method="bilinear")

    def grad(dy):
      if not need_input_grad:
        return None
      t = tf.reshape(tf.transpose(dy, [0, 2, 3, 1]), [n * ow * c, oh])
      t = tf.matmul(t, rh)  # [n*ow*c, h]
      t = tf.transpose(tf.reshape(t, [n, ow, c, h]), [0, 3, 2, 1])
      t = tf.matmul(tf.reshape(t, [n * h * c, ow]), rw)  # [n*h*c, w]
      return tf.transpose(tf.reshape(t, [n, h, c, w]), [0, 1, 3, 2])

    return y, grad

  return resize
