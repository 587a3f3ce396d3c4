"""Applying a sparse-update :class:`~tflite_tl.sparse.selection.Selection`.

``apply_selection(model, selection)`` returns a copy of the prepared model
(BatchNorm folded, new head: the model the selection was made on) in which

* every chosen layer is its channel-sparse counterpart
  (:mod:`tflite_tl.layers.channel_sparse`): the full kernel frozen, the
  chosen slices in ``kernel_trained`` (starting at their original values, so
  the function is unchanged), and its bias trainable if the selection says
  so;
* the layers in ``selection.bias_layers`` train their bias only;
* the head trains fully; every other weight is frozen.

``model.trainable_weights`` is then exactly the selection.
"""
from tflite_tl._compat import keras
from tflite_tl.layers import channel_sparse as layers_lib
from tflite_tl.rewrite import graph
from tflite_tl.rewrite import head as head_lib
from tflite_tl.rewrite import trainability
from tflite_tl.sparse import selection as selection_lib

_SELECTION_ATTR = "_tflite_tl_selection"


def _check(model, selection):
  if not isinstance(selection, selection_lib.Selection):
    raise TypeError(f"apply_selection: expected a tflite_tl.sparse.Selection, "
                    f"got {type(selection).__name__}.")
  names = {l.name for l in model.layers}
  missing = sorted((set(selection.layer_names) | set(selection.bias_layers)
                    | {selection.head}) - names)
  if missing:
    raise ValueError(
        f"apply_selection: the selection names layers {missing} that model "
        f"'{model.name}' does not have; apply a selection to the model it was "
        "made on (BatchNorm folded, same head).")
  head = head_lib.find_classifier(model).name
  if head != selection.head:
    raise ValueError(f"apply_selection: the selection's head is "
                     f"'{selection.head}' but the model's classifier is "
                     f"'{head}'.")
  for choice in selection.layers:
    layer = model.get_layer(choice.layer)
    cls = layers_lib.channel_sparse_class_for(layer)
    if cls is None:
      raise ValueError(f"apply_selection: layer '{choice.layer}' "
                       f"({type(layer).__name__}) cannot train single "
                       "channels; only Conv2D (groups=1) and DepthwiseConv2D "
                       "can.")
    axis = layers_lib.KERNEL_AXIS[choice.channel_axis]
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
      kernel = layer.depthwise_kernel
    if int(kernel.shape[axis]) != choice.total_channels:
      raise ValueError(
          f"apply_selection: layer '{choice.layer}' has "
          f"{int(kernel.shape[axis])} channels on its {choice.channel_axis} "
          f"axis, the selection was made for {choice.total_channels}.")


def apply_selection(model: keras.Model,
                    selection: selection_lib.Selection) -> keras.Model:
  """Returns a copy of ``model`` that trains exactly ``selection``.

  Raises:
    ValueError: the selection does not match the model (names the layer).
  """
  graph.check_functional(model, "apply_selection")
  _check(model, selection)
  biases = set(selection.bias_layers)
  chosen = {c.layer: c for c in selection.layers}

  def rule(layer, current):
    del current
    if layer.name == selection.head:
      return trainability.parameter_names(layer)
    return {"bias"} if layer.name in biases else set()

  frozen = trainability.set_trainable(model, rule)

  def clone_layer(layer):
    choice = chosen.get(layer.name)
    if choice is None:
      return graph.copy_layer(layer)
    names = [layers_lib.TRAINED_KERNEL]
    if layer.name in biases and getattr(layer, "use_bias", False):
      names.append("bias")
    config_axis = (None if choice.channel_axis == layers_lib.CHANNELS
                   else choice.channel_axis)
    return graph.copy_layer(
        layer, layers_lib.channel_sparse_class_for(layer), trainable=True,
        trained_channels=list(choice.channels), channel_axis=config_axis,
        trainable_weight_names=names)

  def weight_source(old, new):
    values = graph.named_weights(old)
    choice = chosen.get(old.name)
    if choice is None:
      return values
    if "depthwise_kernel" in values:
      values[layers_lib.FULL_KERNEL] = values.pop("depthwise_kernel")
    values[layers_lib.TRAINED_KERNEL] = layers_lib.trained_slices(
        values[layers_lib.FULL_KERNEL], choice.channels,
        layers_lib.KERNEL_AXIS[choice.channel_axis])
    return values

  result = graph.rebuild(frozen, clone_layer=clone_layer,
                         weight_source=weight_source)
  setattr(result, _SELECTION_ATTR, selection)
  return result


def selection_of(model: keras.Model):
  """The Selection a model was rewritten with (None for other methods)."""
  return getattr(model, _SELECTION_ATTR, None)
