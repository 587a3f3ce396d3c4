"""DepthwiseConv2D (depth multiplier 1, any stride, SAME/VALID) with a
builtin-only backward pass.

- input gradient: zero-insert the output gradient (stride > 1), pad, and
  DEPTHWISE_CONV_2D with the spatially flipped kernel;
- kernel gradient: fold the batch into channels ([H,W,N*C] via TRANSPOSE and
  RESHAPE), DEPTHWISE_CONV_2D of the padded input with the output gradient as
  a filter dilated by the stride, slice, then SUM over the batch;
- bias gradient: a SUM of the output gradient.
"""
from tflite_tl._compat import tf
from tflite_tl.lower.ops._util import static_shape
from tflite_tl.lower.ops._util import window_padding
from tflite_tl.lower.ops.conv import bias_grad
from tflite_tl.lower.ops.conv import params_then_input
from tflite_tl.lower.ops.spatial import prepare_adjoint_input


def _depthwise(x, kernel, stride: int, padding: str, dilation: int = 1):
  # TF's CPU kernel has no dilated depthwise conv: tf.nn wraps a dilated call
  # in SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND, which the converter folds back
  # into one dilated DEPTHWISE_CONV_2D.
  return tf.nn.depthwise_conv2d(
      x, kernel, [1, stride, stride, 1], padding,
      dilations=[dilation, dilation])


def depthwise_input_grad(dy, kernel, in_shape, stride: int, pads_before):
  """d(loss)/d(input) of a depthwise conv with ``kernel`` [kh,kw,C,1]."""
  kh, kw, _, _ = static_shape(kernel)
  z = prepare_adjoint_input(dy, in_shape[1:3], (kh, kw), stride, pads_before)
  return _depthwise(z, tf.reverse(kernel, [0, 1]), 1, "VALID")


def depthwise_kernel_grad(x, dy, kernel_shape, stride: int, pads):
  """d(loss)/d(kernel) [kh,kw,C,1] of a depthwise conv."""
  kh, kw, c, _ = kernel_shape
  n = static_shape(x)[0]
  if any(pads[0]) or any(pads[1]):
    x = tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
  _, hp, wp, _ = static_shape(x)
  _, oh, ow, _ = static_shape(dy)
  xt = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, hp, wp, n * c])
  ft = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [oh, ow, n * c, 1])
  r = _depthwise(xt, ft, 1, "VALID", dilation=stride)
  r = tf.reshape(r[:, :kh, :kw, :], [kh, kw, n, c])
  return tf.reshape(tf.reduce_sum(r, axis=2), [kh, kw, c, 1])


def make_depthwise_conv2d(*, strides: int, padding: str, in_shape,
                          kernel_shape, need_input_grad: bool,
                          train_kernel: bool, train_bias: bool,
                          has_bias: bool):
  """Builds ``depthwise(x, kernel, bias) -> y`` with a builtin-only gradient."""
  _, h, w, _ = in_shape
  kh, kw, _, multiplier = kernel_shape
  if multiplier != 1 and (need_input_grad or train_kernel):
    raise ValueError(
        "depthwise convolutions with depth_multiplier != 1 are supported "
        "forward only (no gradient through them).")
  _, top, bottom = window_padding(padding, h, kh, strides)
  _, left, right = window_padding(padding, w, kw, strides)
  pads = ((top, bottom), (left, right))

  def backward(dy, kernel, saved_x, with_bias=False):
    dk_fn = ((lambda: depthwise_kernel_grad(saved_x, dy, kernel_shape,
                                            strides, pads))
             if train_kernel else None)
    db_fn = (lambda: bias_grad(dy)) if (with_bias and train_bias) else None
    dx_fn = ((lambda: depthwise_input_grad(dy, kernel, in_shape, strides,
                                           (top, left)))
             if need_input_grad else None)
    dx, (dk, db) = params_then_input([dk_fn, db_fn], dx_fn)
    return dx, dk, db

  @tf.custom_gradient
  def dw(x, kernel, bias):
    y = tf.nn.bias_add(_depthwise(x, kernel, strides, padding.upper()), bias)
    saved_x = x if train_kernel else None

    def grad(dy):
      return backward(dy, kernel, saved_x, with_bias=True)

    return y, grad

  @tf.custom_gradient
  def dw_no_bias(x, kernel):
    y = _depthwise(x, kernel, strides, padding.upper())
    saved_x = x if train_kernel else None

    def grad(dy):
      return backward(dy, kernel, saved_x)[:2]

    return y, grad

  def apply(x, kernel, bias=None):
    return dw(x, kernel, bias) if has_bias else dw_no_bias(x, kernel)

  return apply
