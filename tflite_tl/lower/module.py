"""The train-step ``tf.Module``: forward, loss, builtin-only backward, SGD.

Trained Keras weights become ``tf.Variable``s (resource variables in the
.tflite, named after the Keras weight, e.g. ``block1_dw/depthwise_kernel``);
frozen weights become constants. ``train_step(images, labels)`` is the TF
reference of the on-device step; ``infer(images)`` the forward pass.
"""
from typing import List, Sequence

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers.channel_sparse import KERNEL_AXIS
from tflite_tl.layers.channel_sparse import ChannelSparseMixin
from tflite_tl.lower.graph import ForwardProgram
from tflite_tl.lower.graph import weight_full_name
from tflite_tl.lower.layers import UnsupportedLayerError
from tflite_tl.lower.ops.loss import make_softmax_cross_entropy
from tflite_tl.lower.ops.sparse_conv import channel_slots

MOMENTUM_SUFFIX = "/momentum"
CHANNELS_SUFFIX = "/channels"
SLOTS_SUFFIX = "/channel_slots"


class TrainStepModule(tf.Module):
  """Trainable parameters plus the ``train_step`` and ``infer`` functions.

  Attributes:
    params: the trained variables, in ``model.trainable_weights`` order.
    slots: momentum buffers (empty without momentum), same order.
    train_step: tf.function(images [B,H,W,C] float32, labels [B] int32)
      -> {"loss": scalar}; updates ``params`` in place.
    infer: tf.function(images [1,H,W,C] float32) -> {"logits": [1,K]}
      (``"probabilities"`` when the model ends in a softmax).
    channel_vars: with ``variable_channels``, {layer name: (channels,
      channel_slots)} int32 variables of each channel-sparse layer, read by
      both functions (``<layer>/channels``, ``<layer>/channel_slots``).
  """

  def __init__(self, model: keras.Model, *, batch_size: int,
               learning_rate: float, momentum: float = 0.0,
               label_smoothing: float = 0.0, infer_batch_size: int = 1,
               variable_channels: bool = False):
    super().__init__(name="tflite_tl_train_step")
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if not learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
    if not 0.0 <= momentum < 1.0:
      raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
    trainable = list(model.trainable_weights)
    if not trainable:
      raise ValueError(
          f"Model '{model.name}' has no trainable weights; apply a method "
          "(tflite_tl.rewrite.apply_method) or mark weights trainable.")
    names = [weight_full_name(w) for w in trainable]
    if len(set(names)) != len(names):
      raise ValueError(
          f"Model '{model.name}' has trainable weights with duplicate names "
          f"{sorted(n for n in names if names.count(n) > 1)}; give layers "
          "unique names.")
    self.param_names: List[str] = names
    self.params = [
        tf.Variable(w.numpy(), name=n, trainable=True)
        for w, n in zip(trainable, names)]
    self.slots = ([
        tf.Variable(np.zeros(w.shape, np.float32), name=n + MOMENTUM_SUFFIX,
                    trainable=False)
        for w, n in zip(trainable, names)] if momentum else [])
    by_ref = {w.ref(): v for w, v in zip(trainable, self.params)}
    # Frozen weights are snapshotted now: they become constants of the graph.
    frozen = {w.ref(): w.numpy() for w in model.weights
              if w.ref() not in by_ref}

    def source(weight):
      var = by_ref.get(weight.ref())
      if var is not None:
        return tf.convert_to_tensor(var)
      return tf.constant(frozen[weight.ref()])

    trained_refs = set(by_ref)
    self.channel_vars = {}
    # (kernel axis, full kernel) of each variable layer, as arrays: a
    # reference to the Keras model would make the module track its
    # variables, and the converter would then rename ours.
    self._full_kernels = {}
    if variable_channels:
      self.channel_vars = _channel_variables(model)
      for name in self.channel_vars:
        layer = model.get_layer(name)
        self._full_kernels[name] = (KERNEL_AXIS[layer.channel_axis],
                                    layer.kernel.numpy())
      if not self.channel_vars:
        raise ValueError(f"variable_channels: model '{model.name}' has no "
                         "channel-sparse layer (method tinytrain or "
                         "sparse_update).")
    index = {name: (lambda pair=pair: tuple(
        tf.convert_to_tensor(v) for v in pair))
             for name, pair in self.channel_vars.items()}
    self._train_program = ForwardProgram(
        model, batch_size, trained_refs, source, with_gradients=True,
        channel_index=index)
    if not self._train_program.trained_weights_reached:
      raise UnsupportedLayerError(
          f"Model '{model.name}': no trained weight influences the output.")
    self._infer_program = ForwardProgram(
        model, infer_batch_size, trained_refs, source, with_gradients=False,
        channel_index=index)
    self.output_is_softmax = self._infer_program.output_is_softmax
    image_shape = [int(d) for d in model.inputs[0].shape[1:]]
    num_classes = int(model.outputs[0].shape[-1])
    self.batch_size = batch_size
    self.image_shape = image_shape
    self.num_classes = num_classes
    self.learning_rate = float(learning_rate)
    self.momentum = float(momentum)
    self._loss = make_softmax_cross_entropy(
        num_classes=num_classes, batch_size=batch_size,
        label_smoothing=label_smoothing)
    self.train_step = tf.function(
        self._train_step, input_signature=[
            tf.TensorSpec([batch_size] + image_shape, tf.float32, "images"),
            tf.TensorSpec([batch_size], tf.int32, "labels")])
    self.infer = tf.function(
        self._infer, input_signature=[
            tf.TensorSpec([infer_batch_size] + image_shape, tf.float32,
                          "images")])

  def _train_step(self, images, labels):
    with tf.GradientTape() as tape:
      logits = self._train_program(images)
      loss = self._loss(logits, labels)
    grads = tape.gradient(loss, self.params)
    for name, g in zip(self.param_names, grads):
      if g is None:
        raise UnsupportedLayerError(
            f"Trained weight '{name}' gets no gradient from the loss.")
    self._apply_sgd(grads, loss)
    # The converter freezes variables a function only reads into constants;
    # assigning the channel choice to itself keeps it a variable a board can
    # write (K + C int32 copies per layer and step).
    for var in self.index_variables():
      var.assign(var)
    return {"loss": loss}

  def index_variables(self) -> List[tf.Variable]:
    """The channel-choice variables (empty without variable channels)."""
    return [v for pair in self.channel_vars.values() for v in pair]

  def _apply_sgd(self, grads: Sequence[tf.Tensor], loss: tf.Tensor):
    """SGD on every parameter, skipped as a whole when ``loss`` is not finite.

    A NaN or inf loss (an overflow, or a NaN that got into the batch) would
    make every update NaN, and a board has no host to undo it: the step
    keeps each parameter and momentum slot as it was. Each variable stores
    ``SELECT_V2(finite, ...)`` on a scalar "loss is finite" (|NaN| < inf
    and inf < inf are both false); the parameter's own step stays an
    ``assign_sub`` of the selected amount (0 when skipped), so its read
    happens at the update, not kept alive from the forward pass through the
    backward. A finite step is bit-identical to the plain update.
    """
    lr = self.learning_rate
    finite = tf.less(tf.abs(loss), np.float32(np.inf))
    zero = tf.constant(0.0, tf.float32)
    if self.slots:
      for var, slot, g in zip(self.params, self.slots, grads):
        velocity = tf.where(finite, slot * self.momentum + g, slot)
        slot.assign(velocity)
        var.assign_sub(tf.where(finite, velocity * lr, zero))
    else:
      for var, g in zip(self.params, grads):
        var.assign_sub(tf.where(finite, g * lr, zero))

  def _infer(self, images):
    logits = self._infer_program(images)
    if self.output_is_softmax:
      return {"probabilities": tf.nn.softmax(logits)}
    return {"logits": logits}

  def param_values(self):
    """{name: ndarray} of the current trained parameters."""
    return {n: v.numpy() for n, v in zip(self.param_names, self.params)}

  def choose_channels(self, layer_name: str, channels) -> dict:
    """Re-chooses a variable channel-sparse layer's trained channels, as a
    board would: its index variables, and its trained slices restarted from
    the full kernel's slices of the new channels (its bias and every other
    parameter keep training from where they are).

    Returns {variable name: new value}, the values to write into the
    lowered .tflite (``lower.write_params``) for the same choice.
    """
    if layer_name not in self.channel_vars:
      raise ValueError(f"'{layer_name}' has no variable channels (layers "
                       f"with them: {sorted(self.channel_vars)}).")
    axis, full = self._full_kernels[layer_name]
    channels_var, slots_var = self.channel_vars[layer_name]
    k = int(channels_var.shape[0])
    size = int(slots_var.shape[0])
    chosen = sorted(int(c) for c in channels)
    if len(chosen) != k or len(set(chosen)) != k or not all(
        0 <= c < size for c in chosen):
      raise ValueError(f"'{layer_name}' trains {k} distinct channels of "
                       f"{size}; got {list(channels)}.")
    slices = np.take(full, chosen, axis=axis)
    trained_name = next(n for n in self.param_names
                        if n.startswith(layer_name + "/")
                        and n.endswith("kernel_trained"))
    new = {channels_var.name.split(":")[0]: np.asarray(chosen, np.int32),
           slots_var.name.split(":")[0]: channel_slots(chosen, size),
           trained_name: slices.astype(np.float32)}
    channels_var.assign(new[channels_var.name.split(":")[0]])
    slots_var.assign(new[slots_var.name.split(":")[0]])
    self.params[self.param_names.index(trained_name)].assign(
        new[trained_name])
    if self.slots:
      self.slots[self.param_names.index(trained_name)].assign(
          np.zeros_like(new[trained_name]))
    return new


def _channel_variables(model: keras.Model):
  """{layer name: (channels, channel_slots)} int32 variables of every
  channel-sparse layer, starting at the layer's own choice."""
  out = {}
  for layer in model.layers:
    if not isinstance(layer, ChannelSparseMixin):
      continue
    channels = list(layer.trained_channels)
    size = int(layer.kernel.shape[KERNEL_AXIS[layer.channel_axis]])
    out[layer.name] = (
        tf.Variable(np.asarray(channels, np.int32), trainable=False,
                    name=layer.name + CHANNELS_SUFFIX),
        tf.Variable(channel_slots(channels, size), trainable=False,
                    name=layer.name + SLOTS_SUFFIX))
  return out
