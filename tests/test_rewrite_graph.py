import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.rewrite import graph


def _model():
  inp = keras.Input((4, 4, 2), name="img")
  shared = keras.layers.Conv2D(2, 1, padding="same", name="shared")
  a = shared(inp)
  b = shared(keras.layers.ReLU(name="relu")(a))
  out = keras.layers.Add(name="add")([a, b])
  return keras.Model(inp, out, name="net")


def test_rebuild_copies_graph_and_weights_with_new_layers():
  model = _model()
  copy = graph.rebuild(model)
  x = np.random.RandomState(0).rand(2, 4, 4, 2).astype(np.float32)
  np.testing.assert_array_equal(copy(x).numpy(), model(x).numpy())
  assert [l.name for l in copy.layers] == [l.name for l in model.layers]
  assert copy.get_layer("shared") is not model.get_layer("shared")
  # The shared layer stays shared (one layer, two calls).
  assert len(copy.get_layer("shared")._inbound_nodes) == 2  # pylint: disable=protected-access
  assert copy.name == "net"


def test_node_hook_replaces_a_node():
  model = _model()

  def hook(node, ctx):
    if node.layer.name == "relu":
      return keras.layers.Activation("linear", name="id")(
          ctx.new_tensor(node.keras_inputs[0]))
    return None

  copy = graph.rebuild(model, node_hook=hook)
  assert "relu" not in [l.name for l in copy.layers]
  assert "id" in [l.name for l in copy.layers]


def test_nested_models_are_rejected_with_a_fix():
  inner = _model()
  inp = keras.Input((4, 4, 2))
  outer = keras.Model(inp, inner(inp))
  with pytest.raises(graph.UnsupportedModelError,
                     match="layer 'net' is a nested model"):
    graph.check_functional(outer, "x")


def test_ordered_nodes_is_topological():
  model = _model()
  names = [n.layer.name for n in graph.ordered_nodes(model)]
  assert names == ["shared", "relu", "shared", "add"]
