"""Element-wise layers of MobileNetV3/EfficientNet with builtin-only backward passes.

- hard-swish ``x * relu6(x + 3) / 6``: forward written as Keras writes it,
  which the converter fuses into one HARD_SWISH; keeps ``x``; backward
  ``dy * d(x)`` with d = 0 for x <= -3, 1 for x >= 3, x/3 + 1/2 between
  (LESS_EQUAL, GREATER_EQUAL, SELECT_V2, MUL, ADD). At x = -3 and x = 3 this
  is the value TF's own gradient takes (ReLU6 passes no gradient on its
  boundaries).
- hard-sigmoid ``relu6(x + 3) / 6``: ADD (fused RELU6) and MUL; keeps a bool
  mask (0 < relu6 output < 6), like ReLU6; backward SELECT_V2(mask, dy/6, 0).
- sigmoid: LOGISTIC; keeps its output y; backward dy * y * (1 - y).
- swish ``x * sigmoid(x)``: LOGISTIC and MUL; keeps only ``x`` and recomputes
  the sigmoid in the backward pass: dy * s * (1 + x (1 - s)).
- multiply of two tensors, one possibly broadcast (squeeze-and-excitation:
  [N,H,W,C] * [N,1,1,C]): MUL; each operand is kept only if the *other*
  one needs a gradient; the broadcast operand's gradient is a SUM (keep
  dims) over the broadcast axes.
- affine ``x * scale + offset`` with constant scale/offset (Rescaling,
  Normalization): MUL/ADD; keeps nothing; backward dy * scale.
"""
from typing import Sequence

import numpy as np

from tflite_tl._compat import tf


def make_hard_swish(*, need_input_grad: bool):
  """Builds ``hard_swish(x)``."""

  @tf.custom_gradient
  def hard_swish(x):
    y = x * (tf.nn.relu6(x + 3.0) * (1.0 / 6.0))
    saved_x = x if need_input_grad else None

    def grad(dy):
      if saved_x is None:
        return None
      zero = tf.zeros([], dy.dtype)
      one = tf.ones([], dy.dtype)
      slope = tf.where(saved_x <= -3.0, zero,
                       tf.where(saved_x >= 3.0, one,
                                saved_x * (1.0 / 3.0) + 0.5))
      return dy * slope

    return y, grad

  return hard_swish


def make_hard_sigmoid(*, need_input_grad: bool):
  """Builds ``hard_sigmoid(x) = relu6(x + 3) / 6``."""

  @tf.custom_gradient
  def hard_sigmoid(x):
    r = tf.nn.relu6(x + 3.0)
    mask = None
    if need_input_grad:
      mask = tf.logical_and(r > 0.0, r < 6.0)
      with tf.control_dependencies([mask]):
        r = tf.identity(r)
    y = r * (1.0 / 6.0)

    def grad(dy):
      if mask is None:
        return None
      return tf.where(mask, dy * (1.0 / 6.0), tf.zeros([], dy.dtype))

    return y, grad

  return hard_sigmoid


def make_sigmoid(*, need_input_grad: bool):
  """Builds ``sigmoid(x)``; the backward pass reads the output."""

  @tf.custom_gradient
  def sigmoid(x):
    y = tf.sigmoid(x)
    saved_y = y if need_input_grad else None

    def grad(dy):
      if saved_y is None:
        return None
      return dy * (saved_y * (1.0 - saved_y))

    return y, grad

  return sigmoid


def make_swish(*, need_input_grad: bool):
  """Builds ``swish(x) = x * sigmoid(x)`` (Keras' "swish", tf.nn.silu)."""

  @tf.custom_gradient
  def swish(x):
    y = x * tf.sigmoid(x)
    saved_x = x if need_input_grad else None

    def grad(dy):
      if saved_x is None:
        return None
      s = tf.sigmoid(saved_x)
      return dy * (s * (saved_x * (1.0 - s) + 1.0))

    return y, grad

  return swish


def _broadcast_axes(in_shape: Sequence[int], out_shape: Sequence[int]):
  return [i for i, (a, b) in enumerate(zip(in_shape, out_shape))
          if a == 1 and b != 1]


def make_multiply(*, in_shapes, out_shape, need_input_grads):
  """Builds ``multiply(a, b)`` for same-rank ``a``, ``b`` (one may broadcast).

  Raises:
    ValueError: not two inputs, or ranks differ.
  """
  if len(in_shapes) != 2:
    raise ValueError(f"multiply of {len(in_shapes)} tensors is not supported "
                     "(two inputs only).")
  if len(in_shapes[0]) != len(in_shapes[1]):
    raise ValueError(f"multiply of tensors of shapes {in_shapes} is not "
                     "supported (same rank only).")
  axes = [_broadcast_axes(s, out_shape) for s in in_shapes]
  need_a, need_b = (bool(n) for n in need_input_grads)

  def reduce_to(t, index):
    if not axes[index]:
      return t
    return tf.reduce_sum(t, axis=axes[index], keepdims=True)

  @tf.custom_gradient
  def multiply(a, b):
    y = a * b
    # d/da needs b and d/db needs a: keep each only if the other is needed.
    saved_b = b if need_a else None
    saved_a = a if need_b else None

    def grad(dy):
      da = reduce_to(dy * saved_b, 0) if need_a else None
      db = reduce_to(dy * saved_a, 1) if need_b else None
      return da, db

    return y, grad

  return multiply


def make_affine(*, scale, offset, need_input_grad: bool):
  """Builds ``affine(x) = x * scale + offset`` for constant arrays/scalars."""
  scale = np.asarray(scale, np.float32)
  offset = np.asarray(offset, np.float32)
  scale_t = tf.constant(scale)
  offset_t = tf.constant(offset)
  unit_scale = bool(np.all(scale == 1.0))
  zero_offset = bool(np.all(offset == 0.0))

  @tf.custom_gradient
  def affine(x):
    y = x if unit_scale else x * scale_t
    if not zero_offset:
      y = y + offset_t
    if unit_scale and zero_offset:
      y = tf.identity(y)

    def grad(dy):
      if not need_input_grad:
        return None
      return dy if unit_scale else dy * scale_t

    return y, grad

  return affine
