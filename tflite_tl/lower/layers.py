"""Per-layer lowering rules: Keras layer -> builtin-only primitive.

A rule receives the layer, a :class:`LayerSite` describing this call of the
layer (static input/output shapes with the batch size, which inputs need a
gradient, how to fetch each weight) and returns a function of the input
tensors. Rules are looked up by the layer's exact class, so a user subclass
that changes ``call`` is never silently lowered as its parent; users add
rules for their own layers with :func:`register_layer_rule`.
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers import channel_sparse
from tflite_tl.layers import partial
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.layers.ws_conv import standardize_kernel
from tflite_tl.lower.ops import activation as activation_ops
from tflite_tl.lower.ops import conv as conv_ops
from tflite_tl.lower.ops import dense as dense_ops
from tflite_tl.lower.ops import depthwise as depthwise_ops
from tflite_tl.lower.ops import elementwise as elementwise_ops
from tflite_tl.lower.ops import norm as norm_ops
from tflite_tl.lower.ops import pooling as pooling_ops
from tflite_tl.lower.ops import resize as resize_ops
from tflite_tl.lower.ops import shape as shape_ops
from tflite_tl.lower.ops import sparse_conv as sparse_conv_ops


class UnsupportedLayerError(ValueError):
  """A layer (or a configuration of it) has no builtin-only lowering."""


@dataclasses.dataclass
class LayerSite:
  """One call of a layer inside the model being lowered.

  Attributes:
    layer: the Keras layer.
    in_shapes: static input shapes, batch included.
    out_shapes: static output shapes, batch included.
    need_input_grads: per input, whether the backward pass must reach it.
    weight: ``weight(name) -> tensor`` (variable read if trained, constant
      otherwise), e.g. ``weight("kernel")``.
    trained: ``trained(name) -> bool``.
    is_model_output: the call's output is the model's output (a final
      softmax is then left to inference; training uses the logits).
    channel_index: for a channel-sparse layer whose choice is variable,
      ``channel_index() -> (channels, channel_slots)`` int32 tensors (the
      reads of its index variables, :mod:`tflite_tl.lower.ops.sparse_conv`);
      None: the choice is the layer's constant ``trained_channels``.
  """
  layer: keras.layers.Layer
  in_shapes: List[List[int]]
  out_shapes: List[List[int]]
  need_input_grads: List[bool]
  weight: Callable[[str], tf.Tensor]
  trained: Callable[[str], bool]
  has_weight: Callable[[str], bool]
  is_model_output: bool
  channel_index: Optional[Callable[[], Tuple[tf.Tensor, tf.Tensor]]] = None

  def unsupported(self, what: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"Layer '{self.layer.name}' ({type(self.layer).__name__}): {what}")

  @property
  def need_input_grad(self) -> bool:
    return self.need_input_grads[0]


LayerFn = Callable[[Sequence[tf.Tensor]], tf.Tensor]
Rule = Callable[[LayerSite], LayerFn]

_RULES: Dict[type, Rule] = {}


def register_layer_rule(layer_class: type, rule: Rule) -> None:
  """Lowers layers of exactly ``layer_class`` with ``rule(site) -> fn``."""
  _RULES[layer_class] = rule


def rule_for(layer) -> Rule:
  """The rule for ``layer``; UnsupportedLayerError naming it otherwise."""
  rule = _RULES.get(type(layer))
  if rule is None:
    raise UnsupportedLayerError(
        f"Layer '{layer.name}' of class {type(layer).__module__}."
        f"{type(layer).__name__} has no builtin-only lowering. Supported "
        f"layer classes: {', '.join(supported_layer_names())}. Replace the "
        "layer or register a rule with "
        "tflite_tl.lower.register_layer_rule(cls, rule).")
  return rule


def supported_layer_names() -> List[str]:
  return sorted({f"{c.__module__.split('.')[0]}.{c.__name__}" for c in _RULES})


# --- activation handling shared by conv/dense ---------------------------------

def _activation_fn(site: LayerSite, name: str, shape_grad: bool) -> LayerFn:
  """Lowering of an activation given by name (conv/dense ``activation=``)."""
  if name == "linear":
    return lambda x: x
  if name == "relu":
    return activation_ops.make_relu(max_value=None, need_input_grad=shape_grad)
  if name == "relu6":
    return activation_ops.make_relu(max_value=6.0, need_input_grad=shape_grad)
  if name == "swish":
    return elementwise_ops.make_swish(need_input_grad=shape_grad)
  if name == "sigmoid":
    return elementwise_ops.make_sigmoid(need_input_grad=shape_grad)
  if name == "softmax" and site.is_model_output:
    return lambda x: x  # training uses logits; inference adds the softmax
  raise site.unsupported(
      f"activation '{name}' is not supported (supported: linear, relu, relu6, "
      "swish, sigmoid, and softmax on the model's output).")


def _activation_name(layer) -> str:
  act = layer.activation
  name = getattr(act, "__name__", None) or str(act)
  return {"relu6": "relu6", "relu": "relu", "linear": "linear",
          "softmax": "softmax"}.get(name, name)


def _any_trained(site: LayerSite, names) -> bool:
  return any(site.has_weight(n) and site.trained(n) for n in names)


def _with_activation(site: LayerSite, core: LayerFn) -> LayerFn:
  name = _activation_name(site.layer)
  # The activation's input needs a gradient whenever the core has a trained
  # weight or its input needs one.
  need = site.need_input_grad or _any_trained(
      site, ["kernel", "depthwise_kernel", "bias", "kernel_trained"])
  act = _activation_fn(site, name, need)
  return lambda inputs: act(core(inputs))


# --- rules ---------------------------------------------------------------------

def _single_int(site: LayerSite, value, what: str) -> int:
  values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
  if len(set(values)) != 1:
    raise site.unsupported(f"non-square {what} {values} is not supported.")
  return int(values[0])


def _check_channels_last(site: LayerSite):
  if getattr(site.layer, "data_format", "channels_last") != "channels_last":
    raise site.unsupported("only data_format='channels_last' is supported.")


def _conv_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  _check_channels_last(site)
  strides = _single_int(site, layer.strides, "strides")
  dilation = _single_int(site, layer.dilation_rate, "dilation_rate")
  padding = layer.padding.upper()
  if padding not in ("SAME", "VALID"):
    raise site.unsupported(f"padding '{layer.padding}' is not supported.")
  train_kernel = site.trained("kernel")
  has_bias = layer.use_bias
  train_bias = has_bias and site.trained("bias")
  kernel_shape = layer.kernel.shape.as_list()
  try:
    conv = conv_ops.make_conv2d(
        strides=strides, padding=padding, groups=layer.groups,
        in_shape=site.in_shapes[0], kernel_shape=kernel_shape,
        need_input_grad=site.need_input_grad, train_kernel=train_kernel,
        train_bias=train_bias, has_bias=has_bias, dilation=dilation)
  except ValueError as e:
    raise site.unsupported(str(e)) from e
  standardize = None
  if isinstance(layer, WSConv2D):
    epsilon = layer.epsilon
    if train_kernel:
      standardize = norm_ops.make_weight_standardization(epsilon=epsilon)
    else:
      standardize = lambda k: standardize_kernel(k, epsilon)  # noqa: E731

  def core(inputs):
    kernel = site.weight("kernel")
    if standardize is not None:
      kernel = standardize(kernel)
    bias = site.weight("bias") if has_bias else None
    return conv(inputs[0], kernel, bias)

  return _with_activation(site, core)


def _depthwise_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  _check_channels_last(site)
  strides = _single_int(site, layer.strides, "strides")
  if _single_int(site, layer.dilation_rate, "dilation_rate") != 1:
    raise site.unsupported("dilated depthwise convolution is not supported.")
  padding = layer.padding.upper()
  has_bias = layer.use_bias
  try:
    dw = depthwise_ops.make_depthwise_conv2d(
        strides=strides, padding=padding, in_shape=site.in_shapes[0],
        kernel_shape=layer.depthwise_kernel.shape.as_list(),
        need_input_grad=site.need_input_grad,
        train_kernel=site.trained("depthwise_kernel"),
        train_bias=has_bias and site.trained("bias"), has_bias=has_bias)
  except ValueError as e:
    raise site.unsupported(str(e)) from e

  def core(inputs):
    bias = site.weight("bias") if has_bias else None
    return dw(inputs[0], site.weight("depthwise_kernel"), bias)

  return _with_activation(site, core)


def _channel_sparse_rule(site: LayerSite) -> LayerFn:
  """ChannelSparseConv2D / ChannelSparseDepthwiseConv2D: weight gradients of
  the trained channels only, and (input channels) only those channels of the
  input kept for the backward pass (ops/sparse_conv.py)."""
  layer = site.layer
  _check_channels_last(site)
  strides = _single_int(site, layer.strides, "strides")
  if _single_int(site, layer.dilation_rate, "dilation_rate") != 1:
    raise site.unsupported("dilated channel-sparse convolutions are not "
                           "supported.")
  has_bias = layer.use_bias
  common = dict(
      strides=strides, padding=layer.padding.upper(),
      in_shape=site.in_shapes[0], kernel_shape=layer.kernel.shape.as_list(),
      channels=list(layer.trained_channels),
      need_input_grad=site.need_input_grad,
      train_kernel=site.trained(channel_sparse.TRAINED_KERNEL),
      train_bias=has_bias and site.trained("bias"), has_bias=has_bias,
      variable_channels=site.channel_index is not None)
  if site.trained(channel_sparse.FULL_KERNEL):
    raise site.unsupported("its full kernel is trainable; only "
                           "kernel_trained may train.")
  try:
    if isinstance(layer, channel_sparse.ChannelSparseDepthwiseConv2D):
      conv = sparse_conv_ops.make_channel_sparse_depthwise(**common)
    else:
      conv = sparse_conv_ops.make_channel_sparse_conv2d(
          channel_axis=layer.channel_axis, **common)
  except ValueError as e:
    raise site.unsupported(str(e)) from e

  def core(inputs):
    bias = site.weight("bias") if has_bias else None
    index = site.channel_index() if site.channel_index is not None else ()
    return conv(inputs[0], site.weight(channel_sparse.FULL_KERNEL),
                site.weight(channel_sparse.TRAINED_KERNEL), bias, index)

  return _with_activation(site, core)


def _dense_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  if len(site.in_shapes[0]) != 2:
    raise site.unsupported(
        f"Dense on a rank-{len(site.in_shapes[0])} input is not supported; "
        "add Flatten or GlobalAveragePooling2D before it.")
  has_bias = layer.use_bias
  dense = dense_ops.make_dense(
      need_input_grad=site.need_input_grad, train_kernel=site.trained("kernel"),
      train_bias=has_bias and site.trained("bias"), has_bias=has_bias)

  def core(inputs):
    bias = site.weight("bias") if has_bias else None
    return dense(inputs[0], site.weight("kernel"), bias)

  return _with_activation(site, core)


def _norm_params(site: LayerSite, channels: int):
  layer = site.layer
  gamma = site.weight("gamma") if layer.scale else None
  beta = site.weight("beta") if layer.center else None
  return (norm_ops.optional_param(gamma, channels, 1.0),
          norm_ops.optional_param(beta, channels, 0.0))


def _norm_axis_is_last(site: LayerSite) -> bool:
  axis = site.layer.axis
  axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
  rank = len(site.in_shapes[0])
  return axis in (-1, rank - 1)


def _batchnorm_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  if not _norm_axis_is_last(site):
    raise site.unsupported("only axis=-1 (channels last) is supported.")
  channels = site.in_shapes[0][-1]
  bn = norm_ops.make_batchnorm(
      moving_mean=layer.moving_mean.numpy(),
      moving_variance=layer.moving_variance.numpy(), epsilon=layer.epsilon,
      need_input_grad=site.need_input_grad,
      train_gamma=layer.scale and site.trained("gamma"),
      train_beta=layer.center and site.trained("beta"))
  return lambda inputs: bn(inputs[0], *_norm_params(site, channels))


def _groupnorm_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  if len(site.in_shapes[0]) != 4 or not _norm_axis_is_last(site):
    raise site.unsupported("only 4-D inputs normalised on axis -1 are supported.")
  channels = site.in_shapes[0][-1]
  groups = channels if layer.groups == -1 else layer.groups
  gn = norm_ops.make_groupnorm(
      in_shape=site.in_shapes[0], groups=groups, epsilon=layer.epsilon,
      need_input_grad=site.need_input_grad,
      train_gamma=layer.scale and site.trained("gamma"),
      train_beta=layer.center and site.trained("beta"))
  return lambda inputs: gn(inputs[0], *_norm_params(site, channels))


def _relu_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
    raise site.unsupported("only negative_slope=0 and threshold=0 are supported.")
  max_value = None if layer.max_value is None else float(layer.max_value)
  relu = activation_ops.make_relu(max_value=max_value,
                                  need_input_grad=site.need_input_grad)
  return lambda inputs: relu(inputs[0])


def _activation_layer_rule(site: LayerSite) -> LayerFn:
  act = _activation_fn(site, _activation_name(site.layer), site.need_input_grad)
  return lambda inputs: act(inputs[0])


def _softmax_rule(site: LayerSite) -> LayerFn:
  if not site.is_model_output:
    raise site.unsupported("Softmax is supported only as the model's output.")
  return lambda inputs: inputs[0]


def _add_rule(site: LayerSite) -> LayerFn:
  add = shape_ops.make_add(num_inputs=len(site.in_shapes),
                           need_input_grads=site.need_input_grads)
  return lambda inputs: add(*inputs)


def _average_pool_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  _check_channels_last(site)
  if tuple(layer.pool_size) != tuple(layer.strides):
    raise site.unsupported(
        f"pool_size {layer.pool_size} != strides {layer.strides}; only "
        "non-overlapping pooling is supported.")
  pool = pooling_ops.make_average_pool(
      in_shape=site.in_shapes[0], pool=tuple(layer.pool_size),
      padding=layer.padding, need_input_grad=site.need_input_grad)
  return lambda inputs: pool(inputs[0])


def _global_average_pool_rule(site: LayerSite) -> LayerFn:
  _check_channels_last(site)
  gap = pooling_ops.make_global_average_pool(
      in_shape=site.in_shapes[0], keepdims=bool(site.layer.keepdims),
      need_input_grad=site.need_input_grad)
  return lambda inputs: gap(inputs[0])


def _bilinear_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  interpolation = getattr(layer, "interpolation", None)
  if interpolation != "bilinear":
    raise site.unsupported(
        f"interpolation '{interpolation}' is not supported (use 'bilinear').")
  if isinstance(layer, keras.layers.Resizing) and layer.crop_to_aspect_ratio:
    raise site.unsupported("crop_to_aspect_ratio=True is not supported.")
  out = site.out_shapes[0]
  resize = resize_ops.make_bilinear_resize(
      in_shape=site.in_shapes[0], out_hw=(out[1], out[2]),
      need_input_grad=site.need_input_grad)
  return lambda inputs: resize(inputs[0])


def _zero_padding_rule(site: LayerSite) -> LayerFn:
  _check_channels_last(site)
  (top, bottom), (left, right) = site.layer.padding
  pad = shape_ops.make_pad(in_shape=site.in_shapes[0],
                           pads=((top, bottom), (left, right)),
                           need_input_grad=site.need_input_grad)
  return lambda inputs: pad(inputs[0])


def _reshape_rule(site: LayerSite) -> LayerFn:
  reshape = shape_ops.make_reshape(
      in_shape=site.in_shapes[0], out_shape=site.out_shapes[0],
      need_input_grad=site.need_input_grad)
  return lambda inputs: reshape(inputs[0])


def _identity_rule(site: LayerSite) -> LayerFn:
  del site
  return lambda inputs: inputs[0]


for _cls in (keras.layers.Conv2D, partial.Conv2D, WSConv2D):
  register_layer_rule(_cls, _conv_rule)
for _cls in (keras.layers.DepthwiseConv2D, partial.DepthwiseConv2D):
  register_layer_rule(_cls, _depthwise_rule)
for _cls in (channel_sparse.ChannelSparseConv2D,
             channel_sparse.ChannelSparseDepthwiseConv2D):
  register_layer_rule(_cls, _channel_sparse_rule)
for _cls in (keras.layers.Dense, partial.Dense):
  register_layer_rule(_cls, _dense_rule)
for _cls in (keras.layers.BatchNormalization, partial.BatchNormalization):
  register_layer_rule(_cls, _batchnorm_rule)
register_layer_rule(keras.layers.GroupNormalization, _groupnorm_rule)
register_layer_rule(keras.layers.ReLU, _relu_rule)
register_layer_rule(keras.layers.Activation, _activation_layer_rule)
register_layer_rule(keras.layers.Softmax, _softmax_rule)
register_layer_rule(keras.layers.Add, _add_rule)
register_layer_rule(keras.layers.AveragePooling2D, _average_pool_rule)
register_layer_rule(keras.layers.GlobalAveragePooling2D,
                    _global_average_pool_rule)
register_layer_rule(keras.layers.UpSampling2D, _bilinear_rule)
register_layer_rule(keras.layers.Resizing, _bilinear_rule)
register_layer_rule(keras.layers.ZeroPadding2D, _zero_padding_rule)
register_layer_rule(keras.layers.Flatten, _reshape_rule)
register_layer_rule(keras.layers.Reshape, _reshape_rule)
register_layer_rule(keras.layers.Dropout, _identity_rule)
