"""Rebuilding a functional Keras model node by node.

Every rewrite pass (BatchNorm folding, trainability, head replacement, lite
residual insertion) returns a *new* model and leaves the user's model
untouched. Passes that only swap layers one for one could use
``keras.models.clone_model``; folding removes layers and lite residual
insertion adds whole branches, so all passes share this one rebuilder: it
replays the model's graph in topological order on fresh layer copies, lets a
pass substitute the computation of any node, and copies the weights over.
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

from tflite_tl._compat import keras
from tflite_tl._compat import tf


class UnsupportedModelError(ValueError):
  """The model's structure is outside what a rewrite pass supports."""


def check_functional(model, pass_name: str) -> None:
  """Raises UnsupportedModelError unless ``model`` is a flat functional model."""
  if not isinstance(model, keras.Model):
    raise UnsupportedModelError(
        f"{pass_name}: expected a tf-keras Model, got {type(model).__name__}. "
        "Import tflite_tl before tensorflow so that tf-keras (Keras 2) is used.")
  if not getattr(model, "_is_graph_network", False):
    raise UnsupportedModelError(
        f"{pass_name}: model '{model.name}' is a subclassed Model; rewrite "
        "passes need a functional (or Sequential with an Input) model whose "
        "graph can be inspected. Rebuild it with keras.Input and layer calls.")
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      raise UnsupportedModelError(
          f"{pass_name}: layer '{layer.name}' is a nested model; rewrite "
          "passes support flat functional models only. Build the model from "
          "the inner model's layers directly (e.g. call the backbone on "
          "keras.Input and use its layers' outputs).")


def ordered_nodes(model) -> List:
  """The model's computation nodes in a deterministic topological order."""
  layer_index = {id(layer): i for i, layer in enumerate(model.layers)}
  nodes = []
  for depth in sorted(model._nodes_by_depth, reverse=True):  # pylint: disable=protected-access
    nodes.extend(sorted(
        (n for n in model._nodes_by_depth[depth] if not n.is_input),  # pylint: disable=protected-access
        key=lambda n: layer_index[id(n.layer)]))
  return nodes


def consumers(model) -> Dict[int, List]:
  """Maps id(tensor) to the nodes of ``model`` that read that tensor."""
  result: Dict[int, List] = {}
  for node in ordered_nodes(model):
    for tensor in node.keras_inputs:
      result.setdefault(id(tensor), []).append(node)
  return result


def producer(tensor):
  """The layer that produced a symbolic tensor."""
  return tensor._keras_history.layer  # pylint: disable=protected-access


def node_output(node):
  """The single output tensor of ``node`` (raises for multi-output layers)."""
  outputs = tf.nest.flatten(node.outputs)
  if len(outputs) != 1:
    raise UnsupportedModelError(
        f"layer '{node.layer.name}' has {len(outputs)} outputs; rewrite "
        "passes support single-output layers only.")
  return outputs[0]


def copy_layer(layer, layer_class=None, **config_updates):
  """A fresh, unbuilt layer from ``layer``'s config (optionally changed)."""
  config = layer.get_config()
  config.update(config_updates)
  layer_class = layer_class or layer.__class__
  return layer_class.from_config(config)


@dataclasses.dataclass
class RebuildContext:
  """What a node hook sees while the model is being rebuilt."""
  old_model: keras.Model
  tensor_map: Dict[int, object]
  new_layers: Dict[int, keras.layers.Layer]

  def new_tensor(self, old_tensor):
    """The rebuilt counterpart of a tensor of the original model."""
    return self.tensor_map[id(old_tensor)]

  def call_copy(self, node, inputs=None):
    """Calls the (shared) copy of ``node.layer`` like the original node did."""
    layer = self.new_layers[id(node.layer)]
    if inputs is None:
      args, kwargs = self.map_arguments(node)
      return layer(*args, **kwargs)
    return layer(inputs)

  def map_arguments(self, node):
    def _map(obj):
      if id(obj) in self.tensor_map and keras.backend.is_keras_tensor(obj):
        return self.tensor_map[id(obj)]
      return obj
    args = tf.nest.map_structure(_map, node.call_args)
    kwargs = tf.nest.map_structure(_map, node.call_kwargs)
    return args, kwargs


NodeHook = Callable[[object, RebuildContext], Optional[object]]
"""``hook(node, ctx)`` returns the node's new output, or None for the default."""


def rebuild(model, *, clone_layer: Optional[Callable] = None,
            node_hook: Optional[NodeHook] = None,
            weight_source: Optional[Callable] = None,
            name: Optional[str] = None) -> keras.Model:
  """Replays ``model``'s graph on new layers and returns the new model.

  Args:
    model: a flat functional tf-keras model (not modified).
    clone_layer: ``clone_layer(layer) -> new unbuilt layer`` (default: a copy
      from the layer's config). Called once per layer, so shared layers stay
      shared.
    node_hook: ``node_hook(node, ctx)`` may return the new output tensor for a
      node (e.g. to skip a folded BatchNorm or to add a branch); returning
      None computes the node with the layer copy as in the original.
    weight_source: ``weight_source(old_layer, new_layer)`` returns a dict
      from weight short name (``"kernel"``, ``"bias"``...) to value for
      ``new_layer``, or None to keep its fresh initial values (default: the
      old layer's weights). Weights are matched by name, not position,
      because Keras lists trainable weights first and a pass may change
      which weights are trainable.
    name: the new model's name (default: the old one).

  Returns:
    The rebuilt functional model, with weights copied over.
  """
  clone_layer = clone_layer or copy_layer
  if weight_source is None:
    weight_source = lambda old, new: named_weights(old)  # noqa: E731
  tensor_map: Dict[int, object] = {}
  new_layers: Dict[int, keras.layers.Layer] = {}
  new_inputs = []
  for old_input in model.inputs:
    layer = producer(old_input)
    new_input = keras.Input(type_spec=old_input.type_spec, name=layer.name)
    tensor_map[id(old_input)] = new_input
    new_inputs.append(new_input)
  input_layer_ids = {id(producer(t)) for t in model.inputs}
  for layer in model.layers:
    if id(layer) not in input_layer_ids:
      new_layers[id(layer)] = clone_layer(layer)
  ctx = RebuildContext(model, tensor_map, new_layers)
  for node in ordered_nodes(model):
    outputs = node_hook(node, ctx) if node_hook is not None else None
    if outputs is None:
      outputs = ctx.call_copy(node)
    for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
      tensor_map[id(old)] = new
  new_outputs = tf.nest.map_structure(lambda t: tensor_map[id(t)],
                                      model._nested_outputs)  # pylint: disable=protected-access
  new_model = keras.Model(new_inputs, new_outputs, name=name or model.name)
  for layer in model.layers:
    new_layer = new_layers.get(id(layer))
    if new_layer is None or not new_layer.built:
      continue
    weights = weight_source(layer, new_layer)
    if weights is not None:
      assign_named_weights(new_layer, weights)
  return new_model


def named_weights(layer) -> Dict[str, object]:
  """``{short name: numpy value}`` of a layer's weights."""
  return {weight_short_name(w): w.numpy() for w in layer.weights}


def assign_named_weights(layer, values: Dict[str, object]) -> None:
  """Assigns weights by short name; every weight of ``layer`` must be given."""
  names = [weight_short_name(w) for w in layer.weights]
  missing = sorted(set(names) - set(values))
  if missing or len(set(names)) != len(names):
    raise UnsupportedModelError(
        f"layer '{layer.name}': cannot copy weights {missing or names} by "
        "name; layers with unnamed or duplicate weight names are not "
        "supported by rewrite passes.")
  for weight in layer.weights:
    weight.assign(values[weight_short_name(weight)])
  # Preprocessing layers (Normalization) derive constants from their
  # variables; Keras' own set_weights refreshes them the same way.
  layer.finalize_state()


def weight_short_name(weight) -> str:
  """``"block1_conv/kernel:0"`` -> ``"kernel"``."""
  return weight.name.split("/")[-1].split(":")[0]


def layers_of_type(model, classes: Sequence[type]) -> List:
  return [l for l in model.layers if isinstance(l, tuple(classes))]
