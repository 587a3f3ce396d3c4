"""Dense (fully connected) with a builtin-only backward pass.

dx = dy W^T (FULLY_CONNECTED), dW = x^T dy (BATCH_MATMUL with adj_x),
db = SUM(dy). The input is kept only when the kernel is trained.
"""
from tflite_tl._compat import tf
from tflite_tl.lower.ops.conv import bias_grad
from tflite_tl.lower.ops.conv import params_then_input


def make_dense(*, need_input_grad: bool, train_kernel: bool, train_bias: bool,
               has_bias: bool):
  """Builds ``dense(x, kernel, bias) -> y`` for 2-D ``x`` [B, In]."""

  def backward(dy, kernel, saved_x, with_bias=False):
    dk_fn = ((lambda: tf.matmul(saved_x, dy, transpose_a=True))
             if train_kernel else None)
    db_fn = (lambda: bias_grad(dy)) if (with_bias and train_bias) else None
    dx_fn = ((lambda: tf.matmul(dy, kernel, transpose_b=True))
             if need_input_grad else None)
    dx, (dk, db) = params_then_input([dk_fn, db_fn], dx_fn)
    return dx, dk, db

  @tf.custom_gradient
  def dense(x, kernel, bias):
    y = tf.matmul(x, kernel) + bias
    saved_x = x if train_kernel else None

    def grad(dy):
      return backward(dy, kernel, saved_x, with_bias=True)

    return y, grad

  @tf.custom_gradient
  def dense_no_bias(x, kernel):
    y = tf.matmul(x, kernel)
    saved_x = x if train_kernel else None

    def grad(dy):
      return backward(dy, kernel, saved_x)[:2]

    return y, grad

  def apply(x, kernel, bias=None):
    return dense(x, kernel, bias) if has_bias else dense_no_bias(x, kernel)

  return apply
