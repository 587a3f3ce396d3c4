"""Normalisations and weight-standardised convs in the kernel flavor (float).

- GroupNormalization (TinyTL's lite residual branches): TL_GROUPNORM forward,
  TL_GROUPNORM_GRAD backward (dx from the kept input, then SGD of gamma/beta
  in place); no statistics tensor is kept, the backward recomputes them.
- BatchNormalization with frozen statistics (methods that keep BN: FT-Full,
  FT-Norm+Last): the affine map y = x * a + c with a = gamma * inv_std and
  c = beta - mean * a as builtin MUL/ADD (a and c recomputed from the
  variables each step), TL_BATCHNORM_GRAD backward.
- WSConv2D: the forward convolves with the standardised variable kernel,
  one TL_CONV (standardize, w_hat's values on the fly); backward, one
  TL_WS_CONV_UPDATE with the raw kernel as its input 8: the input gradient
  through w_hat (again on the fly), then per filter row the weight
  gradient, the chain rule through the standardisation and the SGD step of
  the raw kernel in place (a frozen kernel: the bias step and input gradient
  of TL_CONV_UPDATE, or TL_CONV_INPUT_GRAD, through a constant w_hat).
"""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.layers import partial
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.layers.ws_conv import standardize_kernel
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.emitter import Op
from tflite_tl.lower.tl.rule_base import Call
from tflite_tl.lower.tl.rule_base import Emitted
from tflite_tl.lower.tl.rule_base import register
from tflite_tl.lower.tl.rule_base import square
from tflite_tl.lower.tl.rules_conv import TO_KERAS_4D

_PADDING_CODE = {"VALID": 0, "SAME": 1}


def _norm_axis_is_last(call: Call) -> bool:
  axis = call.layer.axis
  axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
  return axis in (-1, len(call.node.in_shapes[0]) - 1)


def _gamma_beta(call: Call, channels: int):
  """(gamma, beta) tensors: variables when trained, constants otherwise."""
  em = call.em
  out = []
  for short, fill, present in (("gamma", 1.0, call.layer.scale),
                               ("beta", 0.0, call.layer.center)):
    if not present:
      out.append(em.writer.constant(f"{call.name}/{short}",
                                    np.full([channels], fill, np.float32)))
    elif call.trained(short):
      out.append(em.parameter(call.param_name(short), call.weight(short)))
    else:
      out.append(em.writer.constant(f"{call.name}/{short}",
                                    call.weight(short)))
  return out


def group_norm_rule(call: Call) -> Emitted:
  layer = call.layer
  shape = call.node.in_shapes[0]
  if len(shape) != 4 or not _norm_axis_is_last(call):
    raise call.unsupported("only 4-D inputs normalised on axis -1 are "
                           "supported.")
  channels = shape[-1]
  groups = channels if layer.groups == -1 else int(layer.groups)
  em = call.em
  x = em.as_float(call.inputs[0])
  gamma, beta = _gamma_beta(call, channels)
  y = em.writer.activation(call.name, shape)
  em.tl("TL_GROUPNORM", [x, gamma, beta], [y], groups=groups,
        epsilon=float(layer.epsilon))
  trains = [s for s in ("gamma", "beta") if s in call.node.weights
            and call.trained(s)]
  need_dx = call.need_input_grad(0)
  if not (need_dx or trains):
    return Emitted(y)

  def backward(g: Grad):
    dx = (em.writer.activation(f"{call.name}/grad_input", shape)
          if need_dx else None)
    em.tl("TL_GROUPNORM_GRAD",
          [g.tensor, g.mask, x, gamma,
           beta if "beta" in trains else None],
          [dx] if dx is not None else [], groups=groups,
          epsilon=float(layer.epsilon),
          learning_rate=call.policy.learning_rate)
    return [Grad(dx) if dx is not None else None]

  return Emitted(y, backward)


def batch_norm_rule(call: Call) -> Emitted:
  layer = call.layer
  if not _norm_axis_is_last(call):
    raise call.unsupported("only axis=-1 (channels last) is supported.")
  shape = call.node.in_shapes[0]
  channels = shape[-1]
  em = call.em
  x_saved = call.inputs[0]
  x = em.as_float(x_saved)
  mean = np.asarray(layer.moving_mean.numpy(), np.float32)
  inv_std = (1.0 / np.sqrt(np.asarray(layer.moving_variance.numpy(),
                                      np.float64) + layer.epsilon)
             ).astype(np.float32)
  gamma, beta = _gamma_beta(call, channels)
  mean_t = em.writer.constant(f"{call.name}/moving_mean", mean)
  inv_std_t = em.writer.constant(f"{call.name}/inv_std", inv_std)
  scale = em.writer.activation(f"{call.name}/scale", [channels])
  em.writer.builtin(Op.MUL, [gamma, inv_std_t], [scale], *opt.mul())
  shifted_mean = em.writer.activation(f"{call.name}/mean_scaled", [channels])
  em.writer.builtin(Op.MUL, [mean_t, scale], [shifted_mean], *opt.mul())
  shift = em.writer.activation(f"{call.name}/shift", [channels])
  em.writer.builtin(Op.SUB, [beta, shifted_mean], [shift], *opt.sub())
  scaled = em.writer.activation(f"{call.name}/scaled", shape)
  em.writer.builtin(Op.MUL, [x, scale], [scaled], *opt.mul())
  y = em.writer.activation(call.name, shape)
  em.writer.builtin(Op.ADD, [scaled, shift], [y], *opt.add())
  trains = [s for s in ("gamma", "beta") if s in call.node.weights
            and call.trained(s)]
  need_dx = call.need_input_grad(0)
  if not (need_dx or trains):
    return Emitted(y)

  def backward(g: Grad):
    dx = em.writer.activation(f"{call.name}/grad_input", shape) if need_dx \
        else None
    em.tl("TL_BATCHNORM_GRAD",
          [g.tensor, g.mask, x_saved if "gamma" in trains else None, mean_t,
           inv_std_t, gamma, beta if "beta" in trains else None],
          [dx] if dx is not None else [],
          learning_rate=call.policy.learning_rate)
    return [Grad(dx) if dx is not None else None]

  return Emitted(y, backward)


def ws_conv_rule(call: Call) -> Emitted:
  layer = call.layer
  strides = square(call, layer.strides, "strides")
  if square(call, layer.dilation_rate, "dilation_rate") != 1:
    raise call.unsupported("dilated convolutions are not supported.")
  act = getattr(layer.activation, "__name__", "linear")
  if act != "linear" or call.node.activation:
    raise call.unsupported("an activation on a WSConv2D is not supported by "
                           "the kernel flavor.")
  padding = layer.padding.upper()
  em = call.em
  kernel = call.weight("kernel")
  x = em.as_float(call.inputs[0])
  shape = call.node.in_shapes[0]
  bias = None
  if layer.use_bias:
    bias = (em.parameter(call.param_name("bias"), call.weight("bias"))
            if call.trained("bias") else
            em.writer.constant(f"{call.name}/bias", call.weight("bias")))
  train_kernel = call.trained("kernel")
  y = em.writer.activation(call.name, call.node.out_shape)
  geometry = {"padding": _PADDING_CODE[padding], "stride_h": strides,
              "stride_w": strides}
  inputs = [x, None, bias] if bias is not None else [x, None]
  if train_kernel:
    # One op: the convolution with the standardised variable kernel, its
    # values computed on the fly from the raw kernel's row statistics (no
    # filter_hat output). The backward op standardises the kernel again, so
    # no standardised kernel is a tensor: kept from the forward to the
    # backward pass they were most of a TinyTL-L+B int8 step's head.
    w_var = em.parameter(call.param_name("kernel"),
                         np.transpose(kernel, (3, 0, 1, 2)),
                         to_keras=TO_KERAS_4D)
    inputs[1] = w_var
    em.tl("TL_CONV", inputs, [y], activation=0, standardize=True,
          epsilon=float(layer.epsilon), **geometry)
  else:
    standardized = standardize_kernel(kernel, layer.epsilon).numpy()
    w_var = None
    w_hat = em.writer.constant(f"{call.name}/kernel_hat",
                               np.transpose(standardized, (3, 0, 1, 2)))
    inputs[1] = w_hat
    if call.policy.training:
      em.tl("TL_CONV", inputs, [y], activation=0, standardize=False,
            epsilon=0.0, **geometry)
    else:  # the predict graph: builtins only
      em.writer.builtin(Op.CONV_2D, [x, w_hat, bias], [y],
                        *opt.conv2d(strides, padding))
  need_dx = call.need_input_grad(0)
  train_bias = bias is not None and call.trained("bias")
  if not (need_dx or train_kernel or train_bias):
    return Emitted(y)

  def backward(g: Grad):
    dx = None
    if need_dx:
      dx = em.writer.activation(f"{call.name}/grad_input", shape)
    if train_kernel:
      # One op: the input gradient (through w_hat, recomputed from the
      # raw kernel given again as input 8, which is bit-identical to the
      # forward's), then per filter row the weight gradient, the
      # standardisation's VJP and the step of the raw kernel (and bias).
      em.tl("TL_WS_CONV_UPDATE",
            [g.tensor, g.mask, x, None, w_var, None,
             bias if train_bias else None, None]
            + ([w_var] if dx is not None else []),
            [dx] if dx is not None else [],
            epsilon=float(layer.epsilon),
            learning_rate=call.policy.learning_rate, **geometry)
      return [Grad(dx) if dx is not None else None]
    if train_bias:
      # The input gradient (through the step's w_hat) fused with the bias
      # step: one op.
      em.tl("TL_CONV_UPDATE", [g.tensor, g.mask, None, None, None, None, bias,
                               None] + ([w_hat] if dx is not None else []),
            [dx] if dx is not None else [],
            learning_rate=call.policy.learning_rate, channel_axis=0,
            qas=True, **geometry)
    elif need_dx:
      em.tl("TL_CONV_INPUT_GRAD", [g.tensor, w_hat, g.mask], [dx], **geometry)
    return [Grad(dx) if dx is not None else None]

  return Emitted(y, backward)


register((keras.layers.GroupNormalization,), group_norm_rule,
         requires=("TL_GROUPNORM", "TL_GROUPNORM_GRAD"))
register((keras.layers.BatchNormalization, partial.BatchNormalization),
         batch_norm_rule, requires=("TL_BATCHNORM_GRAD",))
register((WSConv2D,), ws_conv_rule,
         requires=("TL_CONV", "TL_WS_CONV_UPDATE", "TL_CONV_INPUT_GRAD",
                   "TL_CONV_UPDATE"))
