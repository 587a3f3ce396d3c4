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

With ``variable_channels`` the choice is data, not graph: two int32
variables per layer, ``channels`` [K] (the chosen channels, sorted) and
``channel_slots`` [C] (where each channel's slice sits in
CONCATENATION(trained, full kernel): its position in ``channels`` if chosen,
else K + c), feed the same GATHERs, so a board can re-choose K channels by
writing them (and the trained slices) with every shape, and the arena,
unchanged. The splice then concatenates the full kernel rather than the
frozen rest (K slices more, flash and the splice's temporary).
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


def channel_slots(channels, size: int) -> np.ndarray:
  """``channel_slots`` of a choice: the position of channel c's slice in
  CONCATENATION(trained, full kernel) along the channel axis."""
  slots = np.arange(size, dtype=np.int32) + len(channels)
  slots[np.asarray(channels, np.int64)] = np.arange(len(channels),
                                                     dtype=np.int32)
  return slots


class _Splice:
  """The effective kernel and the chosen-channel GATHER index, from
  constants (a fixed choice) or from the layer's index variables."""

  def __init__(self, channels, axis: int, size: int, variable: bool):
    self.constant = None if variable else np.asarray(channels, np.int32)
    self.channels = list(channels)
    self.axis = axis
    self.size = size

  def index(self, extra):
    return self.constant if self.constant is not None else extra[0]

  def kernel(self, frozen, trained, extra, trained_first=True):
    if self.constant is not None:
      return splice_channels(frozen, trained, self.channels, self.axis,
                             trained_first=trained_first)
    slots = extra[1]
    if trained_first:
      return tf.gather(tf.concat([trained, frozen], axis=self.axis), slots,
                       axis=self.axis)
    # The same kernel from other ops (see the input gradient above): in
    # CONCATENATION(full, trained) a trained slot s < K moves to C + s, a
    # full-kernel slot K + c to c. Integer arithmetic: TFLM's FLOOR_MOD has
    # no int32 and the converter turns an elementwise select into SELECT,
    # which TFLM lacks.
    k = len(self.channels)
    rest = tf.cast(slots >= k, tf.int32)
    other = slots + self.size - (self.size + k) * rest
    return tf.gather(tf.concat([frozen, trained], axis=self.axis), other,
                     axis=self.axis)


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
                               train_bias: bool, has_bias: bool,
                               variable_channels: bool = False):
  """Builds ``conv(x, frozen_kernel, trained_kernel, bias, index=None) -> y``.

  ``frozen_kernel`` is the full kernel (a constant), ``trained_kernel`` the
  trained slices ``channels`` (sorted) of ``channel_axis`` ("input" or
  "output"); ``bias`` may be None when ``has_bias`` is False. With
  ``variable_channels``, ``index`` is (channels [K], channel_slots [C]),
  int32 tensors (the variables' reads), and ``channels`` only the initial
  choice.
  """
  _, h, w, _ = in_shape
  kh, kw = kernel_shape[0], kernel_shape[1]
  _, top, bottom = window_padding(padding, h, kh, strides)
  _, left, right = window_padding(padding, w, kw, strides)
  pads = ((top, bottom), (left, right))
  axis = KERNEL_AXIS[channel_axis]
  splice = _Splice(channels, axis, int(kernel_shape[axis]), variable_channels)
  trained_shape = list(kernel_shape)
  trained_shape[axis] = len(channels)
  output_axis = channel_axis == "output"

  def forward(x, frozen, trained, bias, extra):
    kernel = splice.kernel(frozen, trained, extra)
    y = tf.nn.conv2d(x, kernel, strides, padding.upper())
    return y if bias is None else tf.nn.bias_add(y, bias)

  def backward(dy, frozen, trained, kept, extra):
    def kernel_grad():
      grad_out = (_gather_channels(dy, splice.index(extra)) if output_axis
                  else dy)
      return conv_kernel_grad(_when_needed(kept, dy), grad_out, trained_shape,
                              strides, pads)

    def input_grad():
      kernel = splice.kernel(frozen, trained, extra, trained_first=False)
      return conv_input_grad(dy, kernel, in_shape, strides, (top, left))

    dx, (dk, db) = params_then_input(
        [kernel_grad if train_kernel else None,
         (lambda: bias_grad(dy)) if (has_bias and train_bias) else None],
        input_grad if need_input_grad else None)
    return dx, dk, db

  def kept_input(x, extra):
    if not train_kernel:
      return None
    return _kept(x, splice.index(extra), output_axis)

  @tf.custom_gradient
  def conv(x, frozen, trained, bias, *extra):
    kept = kept_input(x, extra)
    y = _after(forward(x, frozen, trained, bias, extra), kept)

    def grad(dy):
      dx, dk, db = backward(dy, frozen, trained, kept, extra)
      return (dx, None, dk, db) + (None,) * len(extra)

    return y, grad

  @tf.custom_gradient
  def conv_no_bias(x, frozen, trained, *extra):
    kept = kept_input(x, extra)
    y = _after(forward(x, frozen, trained, None, extra), kept)

    def grad(dy):
      dx, dk, _ = backward(dy, frozen, trained, kept, extra)
      return (dx, None, dk) + (None,) * len(extra)

    return y, grad

  def apply(x, frozen, trained, bias=None, index=()):
    if has_bias:
      return conv(x, frozen, trained, bias, *index)
    return conv_no_bias(x, frozen, trained, *index)

  return apply


def make_channel_sparse_depthwise(*, strides: int, padding: str, in_shape,
                                  kernel_shape, channels,
                                  need_input_grad: bool, train_kernel: bool,
                                  train_bias: bool, has_bias: bool,
                                  variable_channels: bool = False):
  """Builds ``dw(x, frozen_kernel, trained_kernel, bias, index=None) -> y``
  for a depthwise conv (multiplier 1) training the kernels of ``channels``
  (``index`` as for :func:`make_channel_sparse_conv2d`)."""
  _, h, w, _ = in_shape
  kh, kw, _, multiplier = kernel_shape
  if multiplier != 1:
    raise ValueError("channel-sparse depthwise convolutions need "
                     f"depth_multiplier 1, got {multiplier}.")
  _, top, bottom = window_padding(padding, h, kh, strides)
  _, left, right = window_padding(padding, w, kw, strides)
  pads = ((top, bottom), (left, right))
  splice = _Splice(channels, 2, int(kernel_shape[2]), variable_channels)
  trained_shape = [kh, kw, len(channels), 1]

  def forward(x, frozen, trained, bias, extra):
    kernel = splice.kernel(frozen, trained, extra)
    y = tf.nn.depthwise_conv2d(x, kernel, [1, strides, strides, 1],
                               padding.upper())
    return y if bias is None else tf.nn.bias_add(y, bias)

  def backward(dy, frozen, trained, kept, extra):
    def kernel_grad():
      return depthwise_kernel_grad(_when_needed(kept, dy),
                                   _gather_channels(dy, splice.index(extra)),
                                   trained_shape, strides, pads)

    def input_grad():
      kernel = splice.kernel(frozen, trained, extra, trained_first=False)
      return depthwise_input_grad(dy, kernel, in_shape, strides, (top, left))

    dx, (dk, db) = params_then_input(
        [kernel_grad if train_kernel else None,
         (lambda: bias_grad(dy)) if (has_bias and train_bias) else None],
        input_grad if need_input_grad else None)
    return dx, dk, db

  def kept_input(x, extra):
    return _kept(x, splice.index(extra), False) if train_kernel else None

  @tf.custom_gradient
  def dw(x, frozen, trained, bias, *extra):
    kept = kept_input(x, extra)
    y = _after(forward(x, frozen, trained, bias, extra), kept)

    def grad(dy):
      dx, dk, db = backward(dy, frozen, trained, kept, extra)
      return (dx, None, dk, db) + (None,) * len(extra)

    return y, grad

  @tf.custom_gradient
  def dw_no_bias(x, frozen, trained, *extra):
    kept = kept_input(x, extra)
    y = _after(forward(x, frozen, trained, None, extra), kept)

    def grad(dy):
      dx, dk, _ = backward(dy, frozen, trained, kept, extra)
      return (dx, None, dk) + (None,) * len(extra)

    return y, grad

  def apply(x, frozen, trained, bias=None, index=()):
    if has_bias:
      return dw(x, frozen, trained, bias, *index)
    return dw_no_bias(x, frozen, trained, *index)

  return apply
