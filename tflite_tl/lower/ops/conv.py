"""Conv2D (any stride, SAME/VALID, groups) with a builtin-only backward pass.

- input gradient: zero-insert the output gradient (stride > 1), pad, and
  correlate with the spatially flipped, in/out-swapped kernel (a CONV_2D; per
  group for grouped convs);
- kernel gradient: TRANSPOSE the (padded) input to [C,H,W,N], use the output
  gradient transposed to [H,W,N,O] as a filter in a CONV_2D dilated by the
  stride, slice the k x k corner and TRANSPOSE back (per group);
- bias gradient: a SUM of the output gradient over N, H, W.
The input is kept for the backward pass only when the kernel is trained.

Pointwise convs (1x1, stride 1, one group; most of a MobileNet) with a
frozen kernel are lowered as matrix products instead: forward and input
gradient are FULLY_CONNECTED ops on the 4-D tensors (no reshape).
TFLM's CONV_2D allocates two int32 per output channel of persistent arena
(quantisation multipliers and shifts, even for float models) and
FULLY_CONNECTED does not: on MobileNetV2-0.35 this removes most of the
kernels' persistent buffers from the arena's tail.
"""
from typing import Optional

from tflite_tl._compat import tf
from tflite_tl.lower.ops._util import static_shape
from tflite_tl.lower.ops._util import window_padding
from tflite_tl.lower.ops.spatial import prepare_adjoint_input


def _split(t, groups: int, axis: int):
  return [t] if groups == 1 else tf.split(t, groups, axis=axis)


def _concat(parts, axis: int):
  return parts[0] if len(parts) == 1 else tf.concat(parts, axis=axis)


def conv_input_grad(dy, kernel, in_shape, stride: int, pads_before,
                    groups: int = 1):
  """d(loss)/d(input) of a conv with ``kernel`` [kh,kw,Cin/g,O]."""
  kh, kw, _, _ = static_shape(kernel)
  z = prepare_adjoint_input(dy, in_shape[1:3], (kh, kw), stride, pads_before)
  flipped = tf.reverse(kernel, [0, 1])
  # Per group: [kh,kw,Cin/g,O/g] -> [kh,kw,O/g,Cin/g]; concatenated on the
  # output axis this is the grouped kernel that maps O channels to Cin.
  parts = [tf.transpose(k, [0, 1, 3, 2]) for k in _split(flipped, groups, 3)]
  adjoint = _concat(parts, 3)
  return tf.nn.conv2d(z, adjoint, 1, "VALID")


def conv_kernel_grad(x, dy, kernel_shape, stride: int, pads, groups: int = 1):
  """d(loss)/d(kernel) [kh,kw,Cin/g,O] of a conv from input ``x``, grad ``dy``.

  ``pads`` is ((top, bottom), (left, right)) of the forward padding.
  """
  kh, kw = kernel_shape[0], kernel_shape[1]
  if any(pads[0]) or any(pads[1]):
    x = tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
  grads = []
  for xg, dyg in zip(_split(x, groups, 3), _split(dy, groups, 3)):
    xt = tf.transpose(xg, [3, 1, 2, 0])  # [Cg, Hp, Wp, N]
    ft = tf.transpose(dyg, [1, 2, 0, 3])  # [oh, ow, N, Og]
    r = tf.nn.conv2d(xt, ft, 1, "VALID", dilations=stride)  # [Cg, >=kh, >=kw, Og]
    r = r[:, :kh, :kw, :]
    grads.append(tf.transpose(r, [1, 2, 0, 3]))
  return _concat(grads, 3)


def params_then_input(param_grads, input_grad):
  """Evaluates the parameter gradients, then ``input_grad()`` after them.

  The control dependency fixes the order in the converted graph: otherwise
  the converter may schedule a bias gradient's SUM just before the final
  update, keeping every layer's output gradient alive until the end of the
  backward pass (measured: +200 KB of arena on MobileNetV2-0.35 at 32 px).
  """
  grads = [g() if g is not None else None for g in param_grads]
  ready = [g for g in grads if g is not None]
  if input_grad is None:
    return None, grads
  if not ready:
    return input_grad(), grads
  with tf.control_dependencies(ready):
    return input_grad(), grads


def bias_grad(dy):
  """d(loss)/d(bias): the output gradient summed over all but channels."""
  return tf.reduce_sum(dy, axis=list(range(len(dy.shape) - 1)))


def is_pointwise(kernel_shape, strides: int, groups: int,
                 dilation: int = 1) -> bool:
  """True for a 1x1, stride-1, ungrouped conv (a per-pixel matmul)."""
  return (kernel_shape[0] == 1 and kernel_shape[1] == 1 and strides == 1
          and groups == 1 and dilation == 1)


def make_conv2d(*, strides: int, padding: str, groups: int, in_shape,
                kernel_shape, need_input_grad: bool, train_kernel: bool,
                train_bias: bool, has_bias: bool, dilation: int = 1):
  """Builds ``conv(x, kernel, bias) -> y`` with a builtin-only gradient.

  ``kernel`` and ``bias`` are tensors (variable reads when trained, constants
  otherwise); ``bias`` may be None when ``has_bias`` is False. Gradients
  that are not needed are returned as None and never computed.
  """
  _, h, w, _ = in_shape
  kh, kw = kernel_shape[0], kernel_shape[1]
  if dilation != 1 and (need_input_grad or train_kernel):
    raise ValueError("dilated convolutions are supported forward only.")
  oh, top, bottom = window_padding(padding, h, kh, strides, dilation)
  ow, left, right = window_padding(padding, w, kw, strides, dilation)
  pads = ((top, bottom), (left, right))
  del oh, ow
  # Only frozen kernels: with a trained (runtime) kernel the matmuls become
  # BATCH_MATMULs, whose persistent buffers cost more than CONV_2D's.
  pointwise = (is_pointwise(kernel_shape, strides, groups, dilation)
               and not train_kernel)
  matrix_shape = [kernel_shape[2], kernel_shape[3]]

  def input_grad(dy, kernel):
    if not need_input_grad:
      return None
    if pointwise:
      return lambda: tf.matmul(dy, tf.reshape(kernel, matrix_shape),
                               transpose_b=True)
    return lambda: conv_input_grad(dy, kernel, in_shape, strides, (top, left),
                                   groups)

  def kernel_grad(dy, saved_x):
    if not train_kernel:
      return None
    return lambda: conv_kernel_grad(saved_x, dy, kernel_shape, strides, pads,
                                    groups)

  def forward(x, kernel, bias):
    if pointwise:
      y = tf.matmul(x, tf.reshape(kernel, matrix_shape))
    else:
      y = tf.nn.conv2d(x, kernel, strides, padding.upper(),
                       dilations=dilation)
    return y if bias is None else tf.nn.bias_add(y, bias)

  @tf.custom_gradient
  def conv(x, kernel, bias):
    y = forward(x, kernel, bias)
    saved_x = x if train_kernel else None

    def grad(dy):
      dx, (dk, db) = params_then_input(
          [kernel_grad(dy, saved_x), (lambda: bias_grad(dy)) if train_bias
           else None], input_grad(dy, kernel))
      return dx, dk, db

    return y, grad

  @tf.custom_gradient
  def conv_no_bias(x, kernel):
    y = forward(x, kernel, None)
    saved_x = x if train_kernel else None

    def grad(dy):
      dx, (dk,) = params_then_input([kernel_grad(dy, saved_x)],
                                    input_grad(dy, kernel))
      return dx, dk

    return y, grad

  def apply(x, kernel, bias: Optional[tf.Tensor] = None):
    if has_bias:
      return conv(x, kernel, bias)
    return conv_no_bias(x, kernel)

  return apply
