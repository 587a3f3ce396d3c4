"""TF reference of a kernel-flavor int8 train step (and predict pass).

The forward pass is the int8 graph's, value for value: int8 layers are
computed with TFLM's integer arithmetic (:mod:`int8_ops`) from the same
scales the emitted graph carries, float layers with the builtin flavor's
rules on the dequantized values. Gradients are those of the float layers the
int8 ones quantize (straight-through estimator): a tf.custom_gradient returns
the exact int8 result forward and, backward, ``tf.GradientTape``'s VJP of the
float surrogate (the same conv on the dequantized int8 weights), masked where
the int8 output left its ReLU/ReLU6 linear range, as TL_RELU_MASK records it.
The update is SGD on the float parameters; with quantization-aware scaling
off, each gradient is first scaled as plain SGD on the integer copies would
scale it (bias: s_bias^2 per channel).
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers import channel_sparse as cs
from tflite_tl.lower.graph import weight_full_name
from tflite_tl.lower.layers import LayerSite
from tflite_tl.lower.layers import rule_for
from tflite_tl.lower.ops.loss import make_softmax_cross_entropy
from tflite_tl.lower.tl import int8_ops
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl import rules_conv
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.model_graph import ModelGraph
from tflite_tl.lower.tl.model_graph import Node
from tflite_tl.lower.tl.model_graph import relu_kind
from tflite_tl.lower.tl.rule_base import Policy



@dataclasses.dataclass
class Value:
  """A forward tensor: its float value and, for int8 tensors, the int8
  values (as int32) and quantization."""
  fq: tf.Tensor
  q: Optional[tf.Tensor] = None
  quantization: Optional[Quantization] = None

  @property
  def is_int8(self) -> bool:
    return self.q is not None


def _ste(exact, surrogate_fn, inputs, mask=None):
  """``exact`` forward; backward the VJP of ``surrogate_fn(*inputs)``,
  multiplied by ``mask`` first."""

  @tf.custom_gradient
  def fn(*args):
    def grad(dy):
      if mask is not None:
        dy = dy * mask
      with tf.GradientTape() as tape:
        tape.watch(list(args))
        y = surrogate_fn(*args)
      return tape.gradient(y, list(args), output_gradients=dy)
    return tf.identity(exact), grad

  return fn(*inputs)


def _kind(layer) -> str:
  return type(layer).__name__


_CHANNEL_SPARSE = ("ChannelSparseConv2D", "ChannelSparseDepthwiseConv2D")


def _scatter(tensor, axis: int, channels, updates):
  """``tensor`` with its ``channels`` along ``axis`` replaced by
  ``updates`` (differentiable in ``updates``)."""
  perm = [axis] + [d for d in range(4) if d != axis]
  inverse = list(np.argsort(perm))
  out = tf.tensor_scatter_nd_update(
      tf.transpose(tensor, perm), [[c] for c in channels],
      tf.transpose(updates, perm))
  return tf.transpose(out, inverse)


class QuantizedTrainStep(tf.Module):
  """The TF reference of an int8 kernel-flavor train step.

  Attributes mirror :class:`tflite_tl.lower.module.TrainStepModule`:
  ``params``/``param_names`` (``model.trainable_weights`` order, Keras
  layout), ``train_step(images, labels) -> {"loss"}`` and
  ``predict(images) -> logits``.
  """

  def __init__(self, model: keras.Model, *, batch_size: int, policy: Policy,
               label_smoothing: float = 0.0):
    super().__init__(name="tflite_tl_int8_reference")
    if not policy.int8:
      raise ValueError("QuantizedTrainStep is the reference of int8 graphs.")
    self.model = model
    self.policy = policy
    self.batch_size = batch_size
    trainable = list(model.trainable_weights)
    self.param_names: List[str] = [weight_full_name(w) for w in trainable]
    self.params = [tf.Variable(w.numpy(), name=n)
                   for w, n in zip(trainable, self.param_names)]
    self.slots = []  # plain SGD: no optimizer state
    self._by_ref = {w.ref(): v for w, v in zip(trainable, self.params)}
    # Weight values at lowering time (the frozen ones stay so; the int8
    # scales of every layer are fixed from them, as in the emitted graph).
    # Read once here so that train_step also runs inside a tf.function.
    self._initial = {w.ref(): np.asarray(w.numpy(), np.float32)
                     for w in model.weights}
    self._graphs = {}
    self._float_fns = {}
    num_classes = int(model.outputs[0].shape[-1])
    self._loss = make_softmax_cross_entropy(
        num_classes=num_classes, batch_size=batch_size,
        label_smoothing=label_smoothing)
    last = model.outputs[0]._keras_history.layer  # pylint: disable=protected-access
    self._softmax_output = isinstance(last, keras.layers.Softmax) or (
        getattr(getattr(last, "activation", None), "__name__", "")
        == "softmax")
    # Per-channel scales of the int32 biases and of trained int8 kernels
    # (per element of the trained slice), for the no-QAS ablation.
    self._bias_scales: Dict[str, np.ndarray] = {}
    self._kernel_scales: Dict[str, np.ndarray] = {}

  def _graph(self, batch: int) -> ModelGraph:
    if batch not in self._graphs:
      # Eagerly even while a tf.function traces: some builtin-flavor rules
      # precompute constants with NumPy when they are built.
      with tf.init_scope():
        graph = ModelGraph(self.model, batch)
        self._float_fns[batch] = {
            node.index: self._float_fn(node) for node in graph.nodes
            if _kind(node.layer) not in ("Dropout", "Softmax")}
      self._graphs[batch] = graph
    return self._graphs[batch]

  # --- forward -------------------------------------------------------------------

  def _weight(self, node: Node, short: str):
    w = node.weights[short]
    var = self._by_ref.get(w.ref())
    if var is not None:
      return tf.convert_to_tensor(var)
    return tf.constant(self._initial[w.ref()])

  def _value(self, node: Node, short: str) -> np.ndarray:
    return self._initial[node.weights[short].ref()]

  def _int8(self, node: Node) -> bool:
    """Conv, depthwise and dense layers compute in int8 unless their weights
    train (as the emitter decides; Add follows its operands)."""
    kind = _kind(node.layer)
    if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
      return not any(node.is_trained(w) for w in ("kernel", "depthwise_kernel"))
    return False

  def _as_int8(self, v: Value, q: Quantization) -> Value:
    if v.is_int8 and v.quantization == q:
      return v
    values = (int8_ops.requantize(v.q, v.quantization, q) if v.is_int8
              else int8_ops.quantize(v.fq, q))
    exact = int8_ops.dequantize(values, q)
    return Value(_ste(exact, lambda x: x, [v.fq]), values, q)

  def _in_q(self, node: Node, v: Value, i: int) -> Quantization:
    if v.is_int8:
      return v.quantization
    return self.policy.quantization[node.input_ids[i]]

  def _out_q(self, node: Node) -> Quantization:
    return self.policy.quantization[node.activation_output_id
                                    or node.output_id]

  def forward(self, images, batch: int) -> tf.Tensor:
    graph = self._graph(batch)
    q_img = quant.IMAGE_QUANTIZATION
    images = tf.convert_to_tensor(images, tf.float32)
    img_q = int8_ops.quantize(images, q_img)
    values = {graph.input_id: Value(int8_ops.dequantize(img_q, q_img), img_q,
                                    q_img)}
    for node in graph.nodes:
      ins = [values[t] for t in node.input_ids]
      values[node.output_id] = self._node(node, ins)
    return values[graph.output_id].fq

  def _node(self, node: Node, ins: List[Value]) -> Value:
    kind = _kind(node.layer)
    if kind in ("ReLU", "Activation") and node.fused_into is not None:
      return ins[0]
    if kind in ("Dropout", "Softmax"):
      return ins[0]
    if kind == "Add":
      if all(v.is_int8 for v in ins):
        return self._add_int8(node, ins)
      return Value(tf.add_n([v.fq for v in ins]))
    if kind in _CHANNEL_SPARSE:
      return self._sparse_int8(node, ins[0])
    if self._int8(node):
      return self._conv_int8(node, ins[0])
    if ins and ins[0].is_int8:
      # Layers whose type follows their input's (as TFLM's kernels do).
      v = ins[0]
      if kind == "GlobalAveragePooling2D":
        return self._pool_int8(node, v, tuple(node.in_shapes[0][1:3]), (1, 1),
                               "VALID", global_pool=True)
      if kind == "AveragePooling2D":
        return self._pool_int8(node, v, tuple(node.layer.pool_size),
                               tuple(node.layer.strides),
                               node.layer.padding.upper())
      if kind in ("Flatten", "Reshape"):
        shape = list(node.out_shape)
        return Value(tf.reshape(v.fq, shape), tf.reshape(v.q, shape),
                     v.quantization)
      if kind == "ZeroPadding2D":
        (t, b), (l, r) = node.layer.padding
        pads = [[0, 0], [t, b], [l, r], [0, 0]]
        return Value(tf.pad(v.fq, pads), tf.pad(
            v.q, pads, constant_values=v.quantization.zero_point[0]),
                     v.quantization)
      if kind in ("ReLU", "Activation") and relu_kind(node.layer):
        return self._relu_int8(node, v)
    return self._float(node, ins)

  def _conv_int8(self, node: Node, v: Value) -> Value:
    layer = node.layer
    depthwise = _kind(layer) == "DepthwiseConv2D"
    if _kind(layer) == "Dense":
      return self._dense_int8(node, v)
    short = "depthwise_kernel" if depthwise else "kernel"
    kernel = self._value(node, short)
    tflite_filter = np.transpose(kernel, (3, 0, 1, 2))
    axis = 3 if depthwise else 0
    q_in = self._in_q(node, v, 0)
    x = self._as_int8(v, q_in)
    has_bias = "bias" in node.weights
    lq = quant.layer_quantization(
        tflite_filter, axis, q_in.scale[0],
        self._value(node, "bias") if has_bias else None)
    q_out = self._out_q(node)
    stride = int(layer.strides[0])
    padding = layer.padding.upper()
    act = node.activation
    bias, bias_q = self._conv_biases(node, lq)
    if depthwise:
      y_q = int8_ops.depthwise_conv2d(
          x.q, q_in, lq.filter_q, lq.filter_scales, bias_q, q_out,
          stride=stride, padding=padding, activation=act)
    else:
      y_q = int8_ops.conv2d(
          x.q, q_in, lq.filter_q, lq.filter_scales, bias_q, q_out,
          stride=stride, padding=padding, activation=act,
          groups=int(getattr(layer, "groups", 1)))
    shape = [1] * 4
    shape[axis] = -1
    w_fq = (lq.filter_q.astype(np.float32)
            * lq.filter_scales.reshape(shape)).astype(np.float32)
    w_keras = tf.constant(np.transpose(w_fq, rules_conv.TO_KERAS_4D))

    def surrogate(x_fq, b):
      if depthwise:
        y = tf.nn.depthwise_conv2d(x_fq, w_keras, [1, stride, stride, 1],
                                   padding)
      else:
        groups = int(getattr(layer, "groups", 1))
        if groups == 1:
          y = tf.nn.conv2d(x_fq, w_keras, stride, padding)
        else:
          y = tf.concat([tf.nn.conv2d(a, k, stride, padding) for a, k in zip(
              tf.split(x_fq, groups, 3), tf.split(w_keras, groups, 3))], 3)
      return y + b

    exact = int8_ops.dequantize(y_q, q_out)
    mask = self._mask(y_q, q_out, act)
    return Value(_ste(exact, surrogate, [x.fq, bias], mask), y_q, q_out)

  def _sparse_int8(self, node: Node, v: Value) -> Value:
    """A channel-sparse conv of an int8 graph: the forward reads the int8
    filter whose chosen slices are re-quantized from the float master after
    every update, with the per-channel scales fixed at lowering (as
    TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE do); the master's gradient is the
    float conv's, through the re-quantization (straight-through)."""
    layer = node.layer
    depthwise = _kind(layer) == "ChannelSparseDepthwiseConv2D"
    channels = list(layer.trained_channels)
    k_axis = cs.KERNEL_AXIS[layer.channel_axis]  # in the Keras layout
    index = [slice(None)] * 4
    index[k_axis] = channels
    index = tuple(index)
    initial = self._value(node, cs.FULL_KERNEL).copy()
    initial[index] = self._value(node, cs.TRAINED_KERNEL)
    axis = 3 if depthwise else 0
    q_in = self._in_q(node, v, 0)
    x = self._as_int8(v, q_in)
    has_bias = "bias" in node.weights
    lq = quant.layer_quantization(
        np.transpose(initial, (3, 0, 1, 2)), axis, q_in.scale[0],
        self._value(node, "bias") if has_bias else None)
    # Each Keras kernel element's scale is its output channel's (depthwise:
    # its channel's; the multiplier is 1).
    scale_shape = (1, 1, -1, 1) if depthwise else (1, 1, 1, -1)
    scales = np.broadcast_to(lq.filter_scales.reshape(scale_shape),
                             initial.shape).astype(np.float32)
    slice_scales = np.ascontiguousarray(scales[index])
    if node.is_trained(cs.TRAINED_KERNEL):
      self._kernel_scales[weight_full_name(
          node.weights[cs.TRAINED_KERNEL])] = slice_scales
    master = self._weight(node, cs.TRAINED_KERNEL)
    slice_q = tf.clip_by_value(int8_ops.round_half_away(tf.cast(
        master / slice_scales, tf.float64)), -127.0, 127.0)
    frozen_q = np.transpose(lq.filter_q, rules_conv.TO_KERAS_4D).astype(
        np.float32)
    filter_q = _scatter(tf.constant(frozen_q), k_axis, channels,
                        tf.cast(slice_q, tf.float32))
    slice_fq = tf.cast(slice_q, tf.float32) * slice_scales
    # Forward value: the re-quantized slice; gradient: to the master.
    slice_ste = master + tf.stop_gradient(slice_fq - master)
    w_keras = _scatter(tf.constant(frozen_q * scales), k_axis, channels,
                       slice_ste)
    q_out = self._out_q(node)
    stride = int(layer.strides[0])
    padding = layer.padding.upper()
    act = node.activation
    bias, bias_q = self._conv_biases(node, lq)
    filter_q = tf.transpose(filter_q, (3, 0, 1, 2))
    if depthwise:
      y_q = int8_ops.depthwise_conv2d(
          x.q, q_in, filter_q, lq.filter_scales, bias_q, q_out,
          stride=stride, padding=padding, activation=act)
    else:
      y_q = int8_ops.conv2d(
          x.q, q_in, filter_q, lq.filter_scales, bias_q, q_out,
          stride=stride, padding=padding, activation=act)

    def surrogate(x_fq, w, b):
      if depthwise:
        y = tf.nn.depthwise_conv2d(x_fq, w, [1, stride, stride, 1], padding)
      else:
        y = tf.nn.conv2d(x_fq, w, stride, padding)
      return y + b

    exact = int8_ops.dequantize(y_q, q_out)
    mask = self._mask(y_q, q_out, act)
    return Value(_ste(exact, surrogate, [x.fq, w_keras, bias], mask), y_q,
                 q_out)

  def _mask(self, y_q, q_out: Quantization, act: Optional[str]):
    if act is None:
      return None
    low, high = int8_ops.mask_bounds(act, q_out)
    return tf.cast((y_q > low) & (y_q < high), tf.float32)

  def _add_int8(self, node: Node, ins: List[Value]) -> Value:
    qs = [self._in_q(node, v, i) for i, v in enumerate(ins)]
    xs = [self._as_int8(v, q) for v, q in zip(ins, qs)]
    q_out = self._out_q(node)
    act = node.activation
    acc_q, acc_quant = xs[0].q, xs[0].quantization
    for i, x in enumerate(xs[1:]):
      last = i == len(xs) - 2
      target_q = q_out if last else q_out
      acc_q = int8_ops.add(acc_q, acc_quant, x.q, x.quantization, target_q,
                           act if last else None)
      acc_quant = target_q
    exact = int8_ops.dequantize(acc_q, q_out)
    mask = self._mask(acc_q, q_out, act)
    return Value(_ste(exact, lambda *a: tf.add_n(list(a)),
                      [x.fq for x in xs], mask), acc_q, q_out)

  def _pool_int8(self, node: Node, v: Value, filter_hw, stride_hw,
                 padding: str, global_pool: bool = False) -> Value:
    pooled = int8_ops.average_pool(v.q, filter_hw, stride_hw, padding)
    keep = not global_pool or bool(node.layer.keepdims)
    y_q = pooled if keep else tf.reshape(pooled, list(node.out_shape))
    exact = int8_ops.dequantize(y_q, v.quantization)

    def surrogate(a):
      y = tf.nn.avg_pool2d(a, [1, *filter_hw, 1], [1, *stride_hw, 1], padding)
      return y if keep else tf.reshape(y, list(node.out_shape))

    return Value(_ste(exact, surrogate, [v.fq]), y_q, v.quantization)

  def _dense_int8(self, node: Node, v: Value) -> Value:
    kernel = self._value(node, "kernel")
    tflite_weights = np.ascontiguousarray(kernel.T)
    q_in = self._in_q(node, v, 0)
    x = self._as_int8(v, q_in)
    has_bias = "bias" in node.weights
    lq = quant.layer_quantization(
        tflite_weights, 0, q_in.scale[0],
        self._value(node, "bias") if has_bias else None)
    q_out = self._out_q(node)
    bias = (self._weight(node, "bias") if has_bias
            else tf.zeros([tflite_weights.shape[0]], tf.float32))
    bias_q = self._bias_q(node, bias, lq) if has_bias else tf.constant(
        lq.bias_q, tf.int64)
    n, ci = node.in_shapes[0]
    co = tflite_weights.shape[0]
    y_q = int8_ops.conv2d(
        tf.reshape(x.q, [n, 1, 1, ci]), q_in,
        lq.filter_q.reshape(co, 1, 1, ci), lq.filter_scales, bias_q, q_out,
        stride=1, padding="VALID", activation=node.activation)
    y_q = tf.reshape(y_q, [n, co])
    w_fq = tf.constant((lq.filter_q.astype(np.float32)
                        * lq.filter_scales[:, None]).T.astype(np.float32))
    exact = int8_ops.dequantize(y_q, q_out)
    mask = self._mask(y_q, q_out, node.activation)
    return Value(_ste(exact, lambda a, b: tf.matmul(a, w_fq) + b,
                      [x.fq, bias], mask), y_q, q_out)

  def _conv_biases(self, node: Node, lq):
    """(float bias the surrogate adds, int32 bias the int8 conv adds); zeros
    for a layer without one."""
    if "bias" in node.weights:
      bias = self._weight(node, "bias")
      return bias, self._bias_q(node, bias, lq)
    return (tf.zeros([lq.filter_scales.shape[0]], tf.float32),
            tf.constant(lq.bias_q, tf.int64))

  def _bias_q(self, node: Node, bias, lq):
    if node.is_trained("bias"):
      self._bias_scales[weight_full_name(node.weights["bias"])] = (
          lq.bias_scales)
    ratio = tf.cast(bias, tf.float64) / lq.bias_scales.astype(np.float64)
    return tf.cast(int8_ops.round_half_away(ratio), tf.int64)

  def _relu_int8(self, node: Node, v: Value) -> Value:
    kind = relu_kind(node.layer)
    q_in = self._in_q(node, v, 0)
    x = self._as_int8(v, q_in)
    y_q = int8_ops.relu(x.q, q_in, q_in, kind)
    exact = int8_ops.dequantize(y_q, q_in)
    mask = self._mask(y_q, q_in, kind)
    return Value(_ste(exact, lambda a: a, [x.fq], mask), y_q, q_in)

  def _float_fn(self, node: Node):
    """The builtin flavor's rule for the node (None if it has none)."""
    trained = {w for w in node.weights if node.is_trained(w)}
    site = LayerSite(
        layer=node.layer, in_shapes=[list(s) for s in node.in_shapes],
        out_shapes=[list(node.out_shape)],
        need_input_grads=[True] * len(node.in_shapes),
        weight=lambda name: self._weight(node, name),
        trained=lambda name: name in trained,
        has_weight=lambda name: name in node.weights,
        is_model_output=node.is_model_output)
    try:
      return rule_for(node.layer)(site)
    except ValueError:
      return None  # not a float-computed layer (int8-only configuration)

  def _float(self, node: Node, ins: List[Value]) -> Value:
    fn = self._float_fns[ins[0].fq.shape[0] if ins else self.batch_size].get(
        node.index)
    if fn is None:
      rule_for(node.layer)  # raises the unsupported-layer error
      raise ValueError(f"Layer '{node.name}' has no float lowering.")
    return Value(fn([v.fq for v in ins]))

  # --- train step ------------------------------------------------------------------

  def train_step(self, images, labels) -> Dict[str, tf.Tensor]:
    labels = tf.convert_to_tensor(labels, tf.int32)
    with tf.GradientTape() as tape:
      logits = self.forward(images, self.batch_size)
      loss = self._loss(logits, labels)
    grads = tape.gradient(loss, self.params)
    for name, var, g in zip(self.param_names, self.params, grads):
      if g is None:
        raise ValueError(f"Trained weight '{name}' gets no gradient.")
      if not self.policy.qas:
        # SGD on the integer copies: each gradient times its scale squared.
        scales = self._bias_scales.get(name, self._kernel_scales.get(name))
        if scales is not None:
          g = g * tf.constant(np.square(scales), tf.float32)
      var.assign_sub(g * self.policy.learning_rate)
    return {"loss": loss}

  def predict(self, images) -> tf.Tensor:
    """What the predict graph outputs: logits, or probabilities when the
    model ends in a softmax (the graph's float SOFTMAX on the logits)."""
    images = tf.convert_to_tensor(images, tf.float32)
    logits = self.forward(images, int(images.shape[0]))
    return tf.nn.softmax(logits) if self._softmax_output else logits

  def param_values(self) -> Dict[str, np.ndarray]:
    return {n: v.numpy() for n, v in zip(self.param_names, self.params)}
