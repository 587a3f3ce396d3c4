"""Shape-only layers with explicit builtin backward passes: zero padding
(grad = SLICE), reshape (grad = RESHAPE), element-wise add (grad = dy to
each input) and fan-out (grads summed with ADD; TFLM has no ADD_N, which TF
would emit when it aggregates gradients of a tensor used several times)."""
from tflite_tl._compat import tf


def make_pad(*, in_shape, pads, need_input_grad: bool):
  """Builds ``pad(x)`` with ``pads`` ((top, bottom), (left, right))."""
  _, h, w, _ = in_shape
  (top, bottom), (left, right) = pads

  @tf.custom_gradient
  def pad(x):
    y = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])

    def grad(dy):
      return dy[:, top:top + h, left:left + w, :] if need_input_grad else None

    return y, grad

  return pad


def make_reshape(*, in_shape, out_shape, need_input_grad: bool):
  """Builds ``reshape(x)`` from ``in_shape`` to ``out_shape`` (with batch)."""

  @tf.custom_gradient
  def reshape(x):
    y = tf.reshape(x, out_shape)

    def grad(dy):
      return tf.reshape(dy, in_shape) if need_input_grad else None

    return y, grad

  return reshape


def make_add(*, num_inputs: int, need_input_grads):
  """Builds ``add(*xs)``; ``need_input_grads`` has one bool per input."""
  if num_inputs < 2:
    raise ValueError("Add needs at least two inputs.")

  @tf.custom_gradient
  def add(*xs):
    y = xs[0]
    for x in xs[1:]:
      y = y + x

    def grad(dy):
      return [dy if need else None for need in need_input_grads]

    return y, grad

  return add


def make_fanout(*, num_outputs: int, need_input_grad: bool):
  """Builds ``fanout(x) -> [x] * num_outputs`` whose gradient sums with ADD."""

  @tf.custom_gradient
  def fanout(x):
    ys = [tf.identity(x) for _ in range(num_outputs)]

    def grad(*dys):
      if not need_input_grad:
        return None
      present = [d for d in dys if d is not None]
      total = present[0]
      for d in present[1:]:
        total = total + d
      return total

    return ys, grad

  return fanout
