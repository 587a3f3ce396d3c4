"""Normalisations with builtin-only backward passes.

- BatchNorm with frozen statistics is the affine map y = x*scale + shift with
  scale = gamma/sqrt(var+eps), shift = beta - mean*scale. It keeps the
  normalised input only when gamma is trained.
- GroupNorm (keras.layers.GroupNormalization, channels last): per sample and
  group, x_hat = (x - mean)/sqrt(var + eps) over H, W and the group's
  channels; y = gamma*x_hat + beta. dx = rstd*(g - mean(g) - x_hat*mean(g*x_hat))
  with g = dy*gamma, the means over the same axes. Kept: x_hat and rstd.
- Weight standardisation (tflite_tl.layers.WSConv2D): the same formula per
  output channel over (kh, kw, cin) of the kernel, applied in the graph.
"""
from typing import Optional

import numpy as np

from tflite_tl._compat import tf
from tflite_tl.lower.ops._util import static_shape
from tflite_tl.lower.ops.conv import params_then_input


def _sum_all_but_last(t):
  return tf.reduce_sum(t, axis=list(range(len(t.shape) - 1)))


def make_batchnorm(*, moving_mean: np.ndarray, moving_variance: np.ndarray,
                   epsilon: float, need_input_grad: bool, train_gamma: bool,
                   train_beta: bool):
  """Builds ``bn(x, gamma, beta) -> y``; gamma/beta tensors (ones/zeros when
  the layer has no scale/center)."""
  mean = tf.constant(moving_mean.astype(np.float32))
  inv_std = tf.constant(
      (1.0 / np.sqrt(moving_variance.astype(np.float64) + epsilon))
      .astype(np.float32))

  @tf.custom_gradient
  def bn(x, gamma, beta):
    scale = gamma * inv_std
    y = x * scale + (beta - mean * scale)
    x_hat = (x - mean) * inv_std if train_gamma else None

    def grad(dy):
      dx, (dgamma, dbeta) = params_then_input(
          [(lambda: _sum_all_but_last(dy * x_hat)) if train_gamma else None,
           (lambda: _sum_all_but_last(dy)) if train_beta else None],
          (lambda: dy * scale) if need_input_grad else None)
      return dx, dgamma, dbeta

    return y, grad

  return bn


def make_groupnorm(*, in_shape, groups: int, epsilon: float,
                   need_input_grad: bool, train_gamma: bool,
                   train_beta: bool):
  """Builds ``gn(x, gamma, beta) -> y`` for 4-D channels-last ``x``."""
  n, h, w, c = in_shape
  if c % groups:
    raise ValueError(f"{c} channels do not split into {groups} groups.")
  grouped = [n, h * w, groups, c // groups]
  axes = [1, 3]

  @tf.custom_gradient
  def gn(x, gamma, beta):
    xg = tf.reshape(x, grouped)
    mean = tf.reduce_mean(xg, axis=axes, keepdims=True)
    centred = xg - mean
    var = tf.reduce_mean(tf.square(centred), axis=axes, keepdims=True)
    rstd = tf.math.rsqrt(var + epsilon)
    x_hat = tf.reshape(centred * rstd, in_shape)
    y = x_hat * gamma + beta
    keep_x_hat = need_input_grad or train_gamma
    saved_x_hat = x_hat if keep_x_hat else None
    saved_rstd = rstd if need_input_grad else None

    def input_grad(dy):
      g = tf.reshape(dy * gamma, grouped)
      xh = tf.reshape(saved_x_hat, grouped)
      mean_g = tf.reduce_mean(g, axis=axes, keepdims=True)
      mean_gx = tf.reduce_mean(g * xh, axis=axes, keepdims=True)
      return tf.reshape(saved_rstd * (g - mean_g - xh * mean_gx), in_shape)

    def grad(dy):
      dx, (dgamma, dbeta) = params_then_input(
          [(lambda: _sum_all_but_last(dy * saved_x_hat)) if train_gamma
           else None,
           (lambda: _sum_all_but_last(dy)) if train_beta else None],
          (lambda: input_grad(dy)) if need_input_grad else None)
      return dx, dgamma, dbeta

    return y, grad

  return gn


def make_weight_standardization(*, epsilon: float):
  """Builds ``ws(kernel) -> kernel_hat`` (per output channel, last axis)."""
  axes = [0, 1, 2]

  @tf.custom_gradient
  def ws(kernel):
    mean = tf.reduce_mean(kernel, axis=axes, keepdims=True)
    centred = kernel - mean
    var = tf.reduce_mean(tf.square(centred), axis=axes, keepdims=True)
    rstd = tf.math.rsqrt(var + epsilon)
    k_hat = centred * rstd

    def grad(dk_hat):
      mean_g = tf.reduce_mean(dk_hat, axis=axes, keepdims=True)
      mean_gk = tf.reduce_mean(dk_hat * k_hat, axis=axes, keepdims=True)
      return rstd * (dk_hat - mean_g - k_hat * mean_gk)

    return k_hat, grad

  return ws


def optional_param(value: Optional[tf.Tensor], size: int, fill: float):
  """``value`` or a constant vector of ``fill`` (for center/scale=False)."""
  if value is not None:
    return value
  return tf.constant(np.full([size], fill, np.float32))


__all__ = ["make_batchnorm", "make_groupnorm", "make_weight_standardization",
           "optional_param", "static_shape"]
