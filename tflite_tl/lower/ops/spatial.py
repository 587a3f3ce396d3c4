"""Builtin-only building blocks for the adjoints of strided windowed ops.

Both helpers are plain tensor functions (no gradients of their own); the
convolution primitives compose them into backward passes.
"""
from tflite_tl._compat import tf
from tflite_tl.lower.ops._util import static_shape


def zero_insert(dy, stride: int):
  """Spreads ``dy`` [N,H,W,C] onto a stride grid: [N,(H-1)s+1,(W-1)s+1,C].

  TFLM has no builtin for this (TF uses ``Conv2DBackpropInput``), so the zeros
  are inserted with 4-D RESHAPE/PAD pairs: pad a unit axis to ``s`` once per
  spatial axis, then cut the trailing zeros.
  """
  if stride == 1:
    return dy
  n, h, w, c = static_shape(dy)
  s = stride
  t = tf.reshape(dy, [n * h, w, 1, c])
  t = tf.pad(t, [[0, 0], [0, 0], [0, s - 1], [0, 0]])
  t = tf.reshape(t, [n, h, 1, w * s * c])
  t = tf.pad(t, [[0, 0], [0, 0], [0, s - 1], [0, 0]])
  t = tf.reshape(t, [n, h * s, w * s, c])
  return t[:, :(h - 1) * s + 1, :(w - 1) * s + 1, :]


def adjoint_padding(in_size: int, out_size: int, kernel: int, stride: int,
                    pad_before: int):
  """Pads (before, after) that turn a stride-1 VALID correlation of the
  zero-inserted output gradient with the flipped kernel into the input
  gradient of a windowed op with the given geometry (length ``in_size``)."""
  before = kernel - 1 - pad_before
  after = in_size + pad_before - (out_size - 1) * stride - 1
  if before < 0 or after < 0:
    raise ValueError(
        f"window geometry (in={in_size}, out={out_size}, k={kernel}, "
        f"s={stride}, pad={pad_before}) has no adjoint by padding.")
  return before, after


def prepare_adjoint_input(dy, in_hw, kernel_hw, stride: int, pads_before):
  """Zero-inserts and pads ``dy`` so that a VALID stride-1 correlation with
  the spatially flipped kernel yields the input gradient of shape ``in_hw``."""
  _, oh, ow, _ = static_shape(dy)
  top, bottom = adjoint_padding(in_hw[0], oh, kernel_hw[0], stride,
                                pads_before[0])
  left, right = adjoint_padding(in_hw[1], ow, kernel_hw[1], stride,
                                pads_before[1])
  z = zero_insert(dy, stride)
  if top or bottom or left or right:
    z = tf.pad(z, [[0, 0], [top, bottom], [left, right], [0, 0]])
  return z
