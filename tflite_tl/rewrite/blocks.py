"""Finding inverted-residual (MBConv) blocks by graph structure.

A block is recognised around each DepthwiseConv2D, independent of layer
names::

    [1x1 Conv2D -> [BatchNorm] -> act ->]  [ZeroPadding2D ->]
    DepthwiseConv2D -> [BatchNorm] -> act [-> squeeze-and-excitation]
    -> 1x1 Conv2D -> [BatchNorm] [-> Dropout] [-> Add with the block input]

``act`` is ReLU/ReLU6, hard-swish (:class:`tflite_tl.layers.HardSwish`) or
swish; squeeze-and-excitation is a ``Multiply`` of the activation with a
gate computed from its ``GlobalAveragePooling2D``. BatchNorms are optional
so that folded models (see :mod:`fold_bn`) match too. This covers the
tflite_tl zoo, ``keras.applications.MobileNetV2`` (ZeroPadding2D before
stride-2 depthwise convs), MobileNetV3 (after :mod:`canonical`),
EfficientNet (Dropout before the Add) and hand-built MobileNet-style models.
"""
import dataclasses
from typing import List, Optional, Tuple

from tflite_tl._compat import keras
from tflite_tl.layers.activations import HardSwish
from tflite_tl.rewrite import graph

SUPPORTED_BLOCK = (
    "[1x1 Conv2D -> BatchNormalization -> act ->] [ZeroPadding2D ->] "
    "DepthwiseConv2D -> BatchNormalization -> act [-> squeeze-and-excitation "
    "Multiply] -> 1x1 Conv2D -> BatchNormalization [-> Dropout] [-> Add with "
    "the block input] (BatchNorms may be folded away; act is a separate ReLU, "
    "ReLU6, HardSwish or Activation('relu'/'relu6'/'swish') layer)")


@dataclasses.dataclass(frozen=True)
class MBConvBlock:
  """One inverted-residual block of a model (tensors are the model's own)."""
  depthwise: keras.layers.Layer
  expand: Optional[keras.layers.Layer]
  project: keras.layers.Layer
  input: object
  output: object
  stride: int
  has_shortcut: bool

  @property
  def input_shape(self) -> Tuple[int, ...]:
    return tuple(self.input.shape[1:])

  @property
  def output_shape(self) -> Tuple[int, ...]:
    return tuple(self.output.shape[1:])


def is_relu(layer) -> bool:
  """A standalone ReLU/ReLU6 layer (what the blocks and the lowering expect)."""
  if isinstance(layer, keras.layers.ReLU):
    return True
  if isinstance(layer, keras.layers.Activation):
    return keras.activations.serialize(layer.activation) in ("relu", "relu6")
  return False


def is_block_activation(layer) -> bool:
  """An activation layer that may sit inside an inverted-residual block."""
  if is_relu(layer) or isinstance(layer, HardSwish):
    return True
  return (isinstance(layer, keras.layers.Activation)
          and keras.activations.serialize(layer.activation) == "swish")


def _is_pointwise(layer) -> bool:
  return (isinstance(layer, keras.layers.Conv2D)
          and not isinstance(layer, keras.layers.DepthwiseConv2D)
          and tuple(layer.kernel_size) == (1, 1)
          and tuple(layer.strides) == (1, 1) and layer.groups == 1)


def _single_reader(readers, tensor):
  nodes = readers.get(id(tensor), [])
  return nodes[0] if len(nodes) == 1 else None


def _producer_if_single_use(readers, tensor):
  """The layer producing ``tensor`` if it is single-use, else None."""
  if len(readers.get(id(tensor), [])) != 1:
    return None
  if len(graph.producer(tensor)._inbound_nodes) != 1:  # pylint: disable=protected-access
    return None
  return graph.producer(tensor)


def _expansion(readers, dw_input):
  """(expand conv or None, block input) walking back from the depthwise input."""
  tensor = dw_input
  layer = _producer_if_single_use(readers, tensor)
  if isinstance(layer, keras.layers.ZeroPadding2D):
    tensor = layer.input
    layer = _producer_if_single_use(readers, tensor)
  block_input = tensor
  if layer is None or not is_block_activation(layer):
    return None, block_input
  layer = _producer_if_single_use(readers, layer.input)
  if isinstance(layer, keras.layers.BatchNormalization):
    layer = _producer_if_single_use(readers, layer.input)
  if layer is not None and _is_pointwise(layer):
    return layer, layer.input
  return None, block_input


def _unsupported(dw, found, what):
  return graph.UnsupportedModelError(
      f"DepthwiseConv2D '{dw.name}' is not part of a supported inverted-"
      f"residual block: expected {what}, found {found}. Supported block: "
      f"{SUPPORTED_BLOCK}.")


def _describe(node):
  if node is None:
    return "a tensor read by several layers (or none)"
  return f"'{node.layer.name}' ({type(node.layer).__name__})"


def _squeeze_excitation(readers, tensor):
  """The Multiply node gating ``tensor`` by a function of its global average
  pool (squeeze-and-excitation), or None."""
  nodes = readers.get(id(tensor), [])
  if len(nodes) != 2:
    return None
  multiply = [n for n in nodes if isinstance(n.layer, keras.layers.Multiply)]
  squeeze = [n for n in nodes
             if isinstance(n.layer, keras.layers.GlobalAveragePooling2D)]
  if len(multiply) != 1 or len(squeeze) != 1:
    return None
  if len(multiply[0].keras_inputs) != 2:
    return None
  return multiply[0]


def _block_at(readers, dw_node) -> MBConvBlock:
  dw = dw_node.layer
  strides = tuple(dw.strides)
  if strides[0] != strides[1] or tuple(dw.dilation_rate) != (1, 1):
    raise _unsupported(dw, f"strides {strides}, dilation "
                       f"{tuple(dw.dilation_rate)}", "equal strides and no "
                       "dilation")
  expand, block_input = _expansion(readers, dw_node.keras_inputs[0])
  tensor = graph.node_output(dw_node)
  node = _single_reader(readers, tensor)
  if node is not None and isinstance(node.layer, keras.layers.BatchNormalization):
    tensor = graph.node_output(node)
    node = _single_reader(readers, tensor)
  if node is None or not is_block_activation(node.layer):
    raise _unsupported(dw, _describe(node), "a ReLU/ReLU6/HardSwish/swish "
                       "after the depthwise conv (and its BatchNorm)")
  tensor = graph.node_output(node)
  node = _single_reader(readers, tensor)
  if node is None:
    node = _squeeze_excitation(readers, tensor)
    if node is not None:
      node = _single_reader(readers, graph.node_output(node))
  if node is None or not _is_pointwise(node.layer):
    raise _unsupported(dw, _describe(node), "a 1x1 projection Conv2D")
  project = node.layer
  tensor = graph.node_output(node)
  node = _single_reader(readers, tensor)
  if node is not None and isinstance(node.layer, keras.layers.BatchNormalization):
    tensor = graph.node_output(node)
    node = _single_reader(readers, tensor)
  if node is not None and isinstance(node.layer, keras.layers.Dropout):
    # EfficientNet's drop-connect: the identity on the device.
    dropout_output = graph.node_output(node)
    after = _single_reader(readers, dropout_output)
    if after is not None and isinstance(after.layer, keras.layers.Add):
      node = after
  has_shortcut = False
  if (node is not None and isinstance(node.layer, keras.layers.Add)
      and len(node.keras_inputs) == 2
      and any(t is block_input for t in node.keras_inputs)):
    tensor = graph.node_output(node)
    has_shortcut = True
  return MBConvBlock(depthwise=dw, expand=expand, project=project,
                     input=block_input, output=tensor, stride=strides[0],
                     has_shortcut=has_shortcut)


def find_mbconv_blocks(model: keras.Model) -> List[MBConvBlock]:
  """All inverted-residual blocks of ``model``, in topological order.

  Raises:
    UnsupportedModelError: a DepthwiseConv2D is not inside a supported block
      (the message names it and describes the supported structure), or the
      model has no depthwise convs at all.
  """
  graph.check_functional(model, "find_mbconv_blocks")
  readers = graph.consumers(model)
  blocks = [_block_at(readers, node) for node in graph.ordered_nodes(model)
            if isinstance(node.layer, keras.layers.DepthwiseConv2D)]
  if not blocks:
    raise graph.UnsupportedModelError(
        f"model '{model.name}' has no DepthwiseConv2D layers, so no "
        "inverted-residual blocks were found for lite residual branches "
        "(methods tinytl_l, tinytl_lb); the other methods (tinytl_b, "
        f"ft_last, ft_norm_last, ft_full) apply. Supported block: "
        f"{SUPPORTED_BLOCK}.")
  for block in blocks:
    if None in block.input_shape[:2] or None in block.output_shape[:2]:
      raise graph.UnsupportedModelError(
          f"block at DepthwiseConv2D '{block.depthwise.name}' has unknown "
          f"spatial size {block.input_shape}; give the model a fixed input "
          "resolution (keras.Input(shape=(H, W, C))).")
  return blocks
