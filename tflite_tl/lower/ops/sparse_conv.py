"""Channel-sparse Conv2D and DepthwiseConv2D with builtin-only backward passes.

The layers (:mod:`tflite_tl.layers.channel_sparse`) convolve with an
effective kernel: the frozen kernel with the trained slices spliced in.
Here the splice is GATHER(CONCATENATION(trained, frozen rest)) over the
channel axis (the frozen rest is a constant), so the forward pass is one
CONV_2D / DEPTHWISE_CONV_2D with a runtime filter, exactly the layer's.

Backward, with K of C channels trained:

- input channels (Conv2D ``"input"``, DepthwiseConv2D): the forward pass
  GATHERs the K chosen channels of the input, [N,H,W,K], and only they are
  kept for the backward pass. The kernel gradient is the dense conv kernel
  gradient (:func:`conv_kernel_grad`, :func:`depthwise_kernel_grad`) on
  them; for a depthwise conv the output gradient is GATHERed to the same K
  channels;
- output channels (Conv2D ``"output"``): the whole input is kept; the
  output gradient is GATHERed to the K channels and the kernel gradient
  computed for those only;
- the input gradient (when the backward pass continues below the layer)
  uses the effective kernel, rebuilt from the trained slices with the
  concatenation in the other order: the same kernel from different ops, so
  the converter cannot merge it with the forward pass's and keep a
  full-size runtime kernel alive from the forward to the backward pass;
- bias: a SUM of the output gradient.

So weight gradients are computed only for the chosen channels, and only the
chosen channels of the input are stored (input axis).
"""
import numpy as np

from tflite_tl._compat import tf
from tflite_tl.layers.channel_sparse import KERNEL_AXIS
from tflite_tl.layers.channel_sparse import splice_channels
from tflite_tl.lower.ops._util import window_padding
from tflite_tl.lower.ops.conv import bias_grad
from tflite_tl.lower.ops.conv import conv_input_grad
from tflite_tl.lower.ops.conv import conv_kernel_grad
from tflite_tl.lower.ops.conv import params_then_input
from tflite_tl.lower.ops.depthwise import depthwise_input_grad
from tflite_tl.lower.ops.depthwise import depthwise_kernel_grad


def _gather_channels(t, channels):
  return tf.gather(t, channels, axis=3)


def _kept(x, channels, keep_all: bool):
  """What the forward pass keeps of the input for the kernel gradient."""
  return x if keep_all else _gather_channels(x, channels)


def _when_needed(kept, dy):
  """``kept`` as an input of the backward pass's ops, made after ``dy``
  exists: otherwise the converter runs the kernel gradient's transposes of
  ``kept`` as soon as the forward pass made it, and both copies stay alive
  until the backward pass reaches the layer."""
  with tf.control_dependencies([dy]):
    return tf.identity(kept)


def _after(y, kept):
  """``y`` once ``kept`` exists: the GATHER runs in the forward pass, so the
  full input need not live until the backward pass."""
  if kept is None:
    return y
  with tf.control_dependencies([kept]):
    return tf.identity(y)


def make_channel_sparse_conv2d(*, strides: int, padding: str, in_shape,
                               kernel_shape, channels, channel_axis: str,
                               need_input_grad: bool, train_kernel: bool,
                               train_bias: bool, has_bias: bool):
  """Builds ``conv(x, frozen_kernel, trained_kernel, bias) -> y``.

  ``frozen_kernel`` is the full kernel (a constant), ``trained_kernel`` the
  trained slices ``channels`` (sorted) of ``channel_axis`` ("input" or
  "output"); ``bias`` may be None when ``has_bias`` is False.
  """
  _, h, w, _ = in_shape
  kh, kw = kernel_shape[0], kernel_shape[1]
  _, top, bottom = window_padding(padding, h, kh, strides)
  _, left, right = window_padding(padding, w, kw, strides)
  pads = ((top, bottom), (left, right))
  axis = KERNEL_AXIS[channel_axis]
  index = np.asarray(channels, np.int32)
  trained_shape = list(kernel_shape)
  trained_shape[axis] = len(channels)
  output_axis = channel_axis == "output"

  def forward(x, frozen, trained, bias):
    kernel = splice_channels(frozen, trained, channels, axis)
    y = tf.nn.conv2d(x, kernel, strides, padding.upper())
    return y if bias is None else tf.nn.bias_add(y, bias)

  def backward(dy, frozen, trained, kept):
    def kernel_grad():
      grad_out = _gather_channels(dy, index) if output_axis else dy
      return conv_kernel_grad(_when_needed(kept, dy), grad_out, trained_shape,
                              strides, pads)

    def input_grad():
      kernel = splice_channels(frozen, trained, channels, axis,
                               trained_first=False)
      return conv_input_grad(dy, kernel, in_shape, strides, (top, left))

    dx, (dk, db) = params_then_input(
        [kernel_grad if train_kernel else None,
         (lambda: bias_grad(dy)) if (has_bias and train_bias) else None],
        input_grad if need_input_grad else None)
    return dx, dk, db

  @tf.custom_gradient
  def conv(x, frozen, trained, bias):
    kept = _kept(x, index, output_axis) if train_kernel else None
    y = _after(forward(x, frozen, trained, bias), kept)

    def grad(dy):
      dx, dk, db = backward(dy, frozen, trained, kept)
      return dx, None, dk, db

    return y, grad

  @tf.custom_gradient
  def conv_no_bias(x, frozen, trained):
    kept = _kept(x, index, output_axis) if train_kernel else None
    y = _after(forward(x, frozen, trained, None), kept)

    def grad(dy):
      dx, dk, _ = backward(dy, frozen, trained, kept)
      return dx, None, dk

    return y, grad

  def apply(x, frozen, trained, bias=None):
    if has_bias:
      return conv(x, frozen, trained, bias)
    return conv_no_bias(x, frozen, trained)

  return apply


def make_channel_sparse_depthwise(*, strides: int, padding: str, in_shape,
                                  kernel_shape, channels,
                                  need_input_grad: bool, train_kernel: bool,
                                  train_bias: bool, has_bias: bool):
  """Builds ``dw(x, frozen_kernel, trained_kernel, bias) -> y`` for a
  depthwise conv (multiplier 1) training the kernels of ``channels``."""
  _, h, w, _ = in_shape
  kh, kw, _, multiplier = kernel_shape
  if multiplier != 1:
    raise ValueError("channel-sparse depthwise convolutions need "
                     f"depth_multiplier 1, got {multiplier}.")
  _, top, bottom = window_padding(padding, h, kh, strides)
  _, left, right = window_padding(padding, w, kw, strides)
  pads = ((top, bottom), (left, right))
  index = np.asarray(channels, np.int32)
  trained_shape = [kh, kw, len(channels), 1]

  def forward(x, frozen, trained, bias):
    kernel = splice_channels(frozen, trained, channels, 2)
    y = tf.nn.depthwise_conv2d(x, kernel, [1, strides, strides, 1],
                               padding.upper())
    return y if bias is None else tf.nn.bias_add(y, bias)

  def backward(dy, frozen, trained, kept):
    def kernel_grad():
      return depthwise_kernel_grad(_when_needed(kept, dy),
                                   _gather_channels(dy, index),
                                   trained_shape, strides, pads)

    def input_grad():
      kernel = splice_channels(frozen, trained, channels, 2,
                               trained_first=False)
      return depthwise_input_grad(dy, kernel, in_shape, strides, (top, left))

    dx, (dk, db) = params_then_input(
        [kernel_grad if train_kernel else None,
         (lambda: bias_grad(dy)) if (has_bias and train_bias) else None],
        input_grad if need_input_grad else None)
    return dx, dk, db

  @tf.custom_gradient
  def dw(x, frozen, trained, bias):
    kept = _kept(x, index, False) if train_kernel else None
    y = _after(forward(x, frozen, trained, bias), kept)

    def grad(dy):
      dx, dk, db = backward(dy, frozen, trained, kept)
      return dx, None, dk, db

    return y, grad

  @tf.custom_gradient
  def dw_no_bias(x, frozen, trained):
    kept = _kept(x, index, False) if train_kernel else None
    y = _after(forward(x, frozen, trained, None), kept)

    def grad(dy):
      dx, dk, _ = backward(dy, frozen, trained, kept)
      return dx, None, dk

    return y, grad

  def apply(x, frozen, trained, bias=None):
    if has_bias:
      return dw(x, frozen, trained, bias)
    return dw_no_bias(x, frozen, trained)

  return apply
