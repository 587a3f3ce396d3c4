"""MaxPooling2D with non-overlapping windows and a builtin-only backward pass.

Forward: MAX_POOL_2D. TF's gradient (``MaxPoolGrad``, a Flex op) sends each
output gradient to the *first* maximum of its window in row-major order.
The same routing from builtins: SPACE_TO_DEPTH gathers the k*k window
positions of each output pixel into channel blocks, SPLIT separates them,
EQUAL against the pooled value marks the maxima, and LOGICAL_OR/NOT/AND keep
the first one. Those k*k bool masks (1 byte per input element in TFLM, a
quarter of the float input) are what the forward pass keeps. Backward:
SELECT_V2 of dy per position, CONCATENATION, DEPTH_TO_SPACE, and PAD for the
rows/columns a VALID pooling dropped.
"""
from tflite_tl._compat import tf
from tflite_tl.lower.ops._util import window_padding


def make_max_pool(*, in_shape, pool: int, padding: str, need_input_grad: bool):
  """Builds ``pool(x)`` for square non-overlapping ``pool`` x ``pool`` windows.

  Raises:
    ValueError: SAME padding on a size that is not a multiple of ``pool``.
  """
  _, h, w, _ = in_shape
  oh, _, _ = window_padding(padding, h, pool, pool)
  ow, _, _ = window_padding(padding, w, pool, pool)
  if padding.upper() == "SAME" and (h % pool or w % pool):
    raise ValueError(
        "SAME max pooling is supported only when the input size is a "
        f"multiple of the pool size; got {h}x{w} with pool {pool}.")
  covered_h, covered_w = oh * pool, ow * pool
  positions = pool * pool

  def first_max_masks(x, y):
    if (covered_h, covered_w) != (h, w):
      x = x[:, :covered_h, :covered_w, :]
    blocks = tf.split(tf.nn.space_to_depth(x, pool), positions, axis=3)
    masks, taken = [], None
    for block in blocks:
      hit = tf.equal(block, y)
      if taken is None:
        masks.append(hit)
        taken = hit
      else:
        masks.append(tf.logical_and(hit, tf.logical_not(taken)))
        taken = tf.logical_or(taken, hit)
    return masks

  @tf.custom_gradient
  def max_pool(x):
    y = tf.nn.max_pool2d(x, pool, pool, padding.upper())
    masks = first_max_masks(x, y) if need_input_grad else None

    def grad(dy):
      if masks is None:
        return None
      zero = tf.zeros([], dy.dtype)
      parts = [tf.where(m, dy, zero) for m in masks]
      dx = tf.nn.depth_to_space(tf.concat(parts, axis=3), pool)
      if (covered_h, covered_w) != (h, w):
        dx = tf.pad(dx, [[0, 0], [0, h - covered_h], [0, w - covered_w],
                         [0, 0]])
      return dx

    return y, grad

  return max_pool
