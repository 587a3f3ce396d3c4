"""Frozen int8 inverted-residual blocks as one TL_INVERTED_RESIDUAL op.

A block is [expand Conv2D (+ ReLU/ReLU6)] -> kxk DepthwiseConv2D
(+ ReLU/ReLU6) -> linear 1x1 project Conv2D, each intermediate tensor used
only by the next layer (a residual Add after the project stays a builtin
ADD). In an int8 lowering such a block runs as one op that streams its
expanded map row by row (tflm_kernels/reference/inverted_residual.h), with
results bit-identical to TFLM's CONV_2D -> DEPTHWISE_CONV_2D -> CONV_2D, so
the TF reference keeps computing the three layers.

The expand is MobileNetV2's 1x1 stride-1 conv or, in a block the backward
does not cross, any one-group Conv2D (its own window, square stride and
SAME/VALID padding): a block without an expand conv then takes the conv in
front of it, such as MobileNetV2's 3x3 stride-2 stem before block1, so that
the stem's output is never an arena tensor either. A crossed block keeps
1x1 expands only (TL_INVERTED_RESIDUAL_INPUT_GRAD's backward knows no
other); a wider conv in front of it stays a builtin.

A block is fused when none of its weights trains; the predict graph fuses
every such block whatever trains elsewhere. In the train step a block below
the earliest trained layer needs no backward at all. A block the backward
crosses (a gradient flows into its input) needs, of its interior, only the
1-bit masks of its ReLU/ReLU6 activations: the fused op writes them as extra
outputs (bit-identical to TL_RELU_MASK on the unfused int8 layers' outputs),
and its backward is one TL_INVERTED_RESIDUAL_INPUT_GRAD
(tflm_kernels/reference/inverted_residual_input_grad.h): the unfused layers'
chain of input gradients through their int8 filters (project with the
incoming gradient's mask, depthwise with its mask, expand with its mask)
streamed by rows or by channel, bit-identical to the three TL_CONV_INPUT_GRAD /
TL_DEPTHWISE_INPUT_GRAD ops, so the two expanded-width float gradient maps
between them are never tensors. The expanded map and the per-channel
requantization arrays that TFLM's CONV_2D / DEPTHWISE_CONV_2D keep in
persistent arena are then gone from the train step too.
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl.lower.ops._util import window_padding
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.emitter import Emitter
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.flatbuffer_writer import Tensor
from tflite_tl.lower.tl.model_graph import ModelGraph
from tflite_tl.lower.tl.model_graph import Node
from tflite_tl.lower.tl.rule_base import Emitted
from tflite_tl.lower.tl.rule_base import Policy

OP = "TL_INVERTED_RESIDUAL"
GRAD_OP = "TL_INVERTED_RESIDUAL_INPUT_GRAD"
_ACTIVATION_CODE = {None: 0, "relu": 1, "relu6": 2}
_PADDING_CODE = {"VALID": 0, "SAME": 1}
_TO_TFLITE_4D = (3, 0, 1, 2)


@dataclasses.dataclass(frozen=True)
class Block:
  """The layer calls of one fusable block (expand None when absent; a 1x1
  conv, or any conv when not crossed), every node index it covers (fused
  ReLU layers included), and whether the train step's backward crosses it
  (then it emits its masks and input gradients)."""
  expand: Optional[Node]
  depthwise: Node
  project: Node
  members: frozenset
  crossed: bool = False

  @property
  def input_id(self) -> int:
    return (self.expand or self.depthwise).input_ids[0]


def _activation_name(layer) -> str:
  act = getattr(layer, "activation", None)
  return getattr(act, "__name__", str(act)) if act is not None else "linear"


def _plain(layer, cls) -> bool:
  # Exact stock classes: a subclass may compute something else.
  if type(layer) is not cls:  # pylint: disable=unidiomatic-typecheck
    return False
  if getattr(layer, "data_format", "channels_last") != "channels_last":
    return False
  return tuple(layer.dilation_rate) == (1, 1)


def _is_pointwise(node: Node) -> bool:
  layer = node.layer
  return (_plain(layer, keras.layers.Conv2D)
          and tuple(layer.kernel_size) == (1, 1)
          and tuple(layer.strides) == (1, 1)
          and int(getattr(layer, "groups", 1)) == 1
          and _activation_name(layer) in ("linear", "relu", "relu6"))


def _window_fits(node: Node) -> bool:
  """Whether the layer's window, stride and padding fit its input (the
  rule window_padding applies when the op's geometry is derived)."""
  layer = node.layer
  padding = layer.padding.upper()
  h, w = node.in_shapes[0][1:3]
  try:
    window_padding(padding, h, layer.kernel_size[0], layer.strides[0])
    window_padding(padding, w, layer.kernel_size[1], layer.strides[1])
  except ValueError:
    return False
  return True


def _is_conv_expand(node: Node) -> bool:
  """A one-group Conv2D of any window, square stride and SAME/VALID padding
  that fits its input: an expand for a block the backward does not cross."""
  layer = node.layer
  if not (_plain(layer, keras.layers.Conv2D)
          and int(getattr(layer, "groups", 1)) == 1
          and _activation_name(layer) in ("linear", "relu", "relu6")):
    return False
  strides = tuple(layer.strides)
  if strides[0] != strides[1] or layer.padding.upper() not in _PADDING_CODE:
    return False
  return _window_fits(node)


def _is_depthwise(node: Node) -> bool:
  layer = node.layer
  if not _plain(layer, keras.layers.DepthwiseConv2D):
    return False
  strides = tuple(layer.strides)
  kernel = tuple(layer.kernel_size)
  if strides[0] != strides[1] or kernel[0] != kernel[1]:
    return False
  if int(layer.depth_multiplier) != 1 or layer.padding.upper() not in (
      _PADDING_CODE):
    return False
  if _activation_name(layer) not in ("linear", "relu", "relu6"):
    return False
  return _window_fits(node)


def _emitted_id(node: Node) -> int:
  return node.activation_output_id or node.output_id


def _members(graph: ModelGraph, node: Node) -> List[int]:
  """The node and the ReLU layer fused into it."""
  out = [node.index]
  if node.activation_output_id is not None:
    out += graph.consumers[node.output_id]
  return out


def _sole_consumer(graph: ModelGraph, node: Node) -> Optional[Node]:
  if node.is_model_output:
    return None
  if node.activation_output_id is not None:
    if len(graph.consumers.get(node.output_id, [])) != 1:
      return None
  users = graph.consumers.get(_emitted_id(node), [])
  return graph.nodes[users[0]] if len(users) == 1 else None


def find_blocks(graph: ModelGraph, policy: Policy) -> Dict[int, Block]:
  """The fusable blocks of ``graph``, keyed by their project node's index
  (where the fused op is emitted). Empty unless ``policy`` is int8."""
  if not policy.int8:
    return {}
  producer = {n.output_id: n for n in graph.nodes}
  blocks = {}
  used = set()  # node indices already in a block
  for dw in graph.nodes:
    if not _is_depthwise(dw):
      continue
    project = _sole_consumer(graph, dw)
    if (project is None or not _is_pointwise(project)
        or project.activation is not None
        or _activation_name(project.layer) != "linear"):
      continue
    expand = producer.get(dw.input_ids[0])
    if expand is not None and expand.fused_into is not None:
      expand = graph.nodes[expand.fused_into]  # through its fused ReLU
    if expand is not None and not (_is_conv_expand(expand)
                                   and _sole_consumer(graph, expand) is dw
                                   and expand.index not in used):
      expand = None  # (a project of an earlier block stays that block's)
    if expand is not None and not _is_pointwise(expand) and (
        expand.has_trained
        or policy.training and graph.needs_grad[expand.input_ids[0]]):
      # A wider or strided conv joins only a frozen block the backward does
      # not cross; otherwise the block starts at the depthwise, as without.
      expand = None
    parts = [n for n in (expand, dw, project) if n is not None]
    if any(n.has_trained for n in parts):
      continue
    crossed = policy.training and graph.needs_grad[parts[0].input_ids[0]]
    members = [i for n in parts for i in _members(graph, n)]
    used.update(members)
    blocks[project.index] = Block(expand, dw, project, frozenset(members),
                                  crossed)
  return blocks


def _stage(em: Emitter, node: Node, channel_axis: int, in_scale: float,
           kernel_short: str):
  kernel = np.asarray(node.weights[kernel_short].numpy(), np.float32)
  tflite_filter = np.transpose(kernel, _TO_TFLITE_4D)
  bias = (np.asarray(node.weights["bias"].numpy(), np.float32)
          if "bias" in node.weights else None)
  lq = quant.layer_quantization(tflite_filter, channel_axis, in_scale, bias)
  filt = em.writer.constant(
      f"{node.name}/{kernel_short}", lq.filter_q,
      quantization=Quantization.per_channel(lq.filter_scales, channel_axis))
  bias_t = em.writer.constant(
      f"{node.name}/bias:int32", lq.bias_q,
      quantization=Quantization.per_channel(lq.bias_scales, 0))
  return filt, bias_t


def _f32(value: float) -> float:
  return float(np.float32(value))


def _mask(em: Emitter, node: Node, shape) -> Tensor:
  return em.writer.activation(f"{node.name}/mask",
                              [(int(np.prod(shape)) + 7) // 8], np.uint8)


def _geometry(node: Node) -> dict:
  stride = int(node.layer.strides[0])
  return {"padding": _PADDING_CODE[node.layer.padding.upper()],
          "stride_h": stride, "stride_w": stride}


def _expand_geometry(node: Optional[Node]) -> dict:
  """The expand conv's stride and padding options; without an expand conv
  stride 1 and VALID (the op ignores them then, but checks them)."""
  if node is None:
    return {"expand_padding": 0, "expand_stride_h": 1, "expand_stride_w": 1}
  g = _geometry(node)
  return {"expand_padding": g["padding"], "expand_stride_h": g["stride_h"],
          "expand_stride_w": g["stride_w"]}


def _chain_backward(block: Block, em: Emitter, filters: Dict[str, Tensor],
                    masks: Dict[str, Tensor]):
  """The input gradients the unfused frozen layers emit (rules_conv), in
  reverse: project, depthwise, [expand], each through its int8 filter and
  with the mask of its own activation (the project's incoming gradient may
  still carry a downstream mask). Kept as the yardstick the fused backward
  is measured against (``_FUSED_BACKWARD``)."""
  stages = [("TL_CONV_INPUT_GRAD", block.project),
            ("TL_DEPTHWISE_INPUT_GRAD", block.depthwise)]
  if block.expand is not None:
    stages.append(("TL_CONV_INPUT_GRAD", block.expand))

  def backward(g: Grad):
    grad, mask = g.tensor, g.mask
    for op, node in stages:
      dx = em.writer.activation(f"{node.name}/grad_input", node.in_shapes[0])
      own = masks.get(node.name)
      if own is not None and mask is not None:
        raise AssertionError("a fused activation's gradient arrived masked")
      em.tl(op, [grad, filters[node.name], own if own is not None else mask],
            [dx], **_geometry(node))
      grad, mask = dx, None
    return [Grad(grad)]

  return backward


# False emits the three-op chain instead (tests compare the two arenas).
_FUSED_BACKWARD = True


def _backward(block: Block, em: Emitter, filters: Dict[str, Tensor],
              masks: Dict[str, Tensor]):
  """The block's input gradient as one TL_INVERTED_RESIDUAL_INPUT_GRAD: the
  chain's arithmetic streamed by rows or by channel, so neither expanded-width gradient
  map is a tensor. The incoming gradient's mask (a downstream activation's)
  is the op's grad_output_mask."""
  if not _FUSED_BACKWARD:
    return _chain_backward(block, em, filters, masks)
  dw, expand = block.depthwise, block.expand
  if expand is not None and not _is_pointwise(expand):
    raise AssertionError(f"{block.project.name}: a crossed block has a 1x1 "
                         "expand or none (find_blocks)")

  def backward(g: Grad):
    first = expand or dw
    dx = em.writer.activation(f"{first.name}/grad_input", first.in_shapes[0])
    expand_inputs = []
    if expand is not None:
      expand_inputs = [filters[expand.name], masks.get(expand.name)]
    em.tl(GRAD_OP, [g.tensor, g.mask, filters[block.project.name],
                    filters[dw.name], masks.get(dw.name)] + expand_inputs,
          [dx], **_geometry(dw))
    return [Grad(dx)]

  return backward


def emit(block: Block, x: Tensor, em: Emitter, policy: Policy) -> Emitted:
  """Emits the block on its input ``x`` (quantized first when float): its
  int8 output and, for a block the backward crosses, its backward (its
  gradient w.r.t. the block's input)."""
  q = policy.quantization
  q_in = (x.quantization if x.dtype == np.int8 and x.quantization is not None
          else q[block.input_id])
  x = em.as_int8(x, q_in)
  dw_in_scale = q_in.scale[0]
  options = {"expand_activation": 0, "expand_scale": 0.0,
             "expand_zero_point": 0}
  expand_filter = expand_bias = None
  if block.expand is not None:
    q_exp = q[_emitted_id(block.expand)]
    expand_filter, expand_bias = _stage(em, block.expand, 0, q_in.scale[0],
                                        "kernel")
    options = {"expand_activation": _ACTIVATION_CODE[block.expand.activation],
               "expand_scale": _f32(q_exp.scale[0]),
               "expand_zero_point": int(q_exp.zero_point[0])}
    dw_in_scale = q_exp.scale[0]
  dw = block.depthwise
  q_dw = q[_emitted_id(dw)]
  dw_filter, dw_bias = _stage(em, dw, 3, dw_in_scale, "depthwise_kernel")
  project = block.project
  p_filter, p_bias = _stage(em, project, 0, q_dw.scale[0], "kernel")
  y = em.writer.activation(project.name, project.out_shape, np.int8,
                           q[project.output_id])
  stride = int(dw.layer.strides[0])
  options.update(
      _expand_geometry(block.expand),
      depthwise_activation=_ACTIVATION_CODE[dw.activation],
      depthwise_scale=_f32(q_dw.scale[0]),
      depthwise_zero_point=int(q_dw.zero_point[0]),
      padding=_PADDING_CODE[dw.layer.padding.upper()],
      stride_h=stride, stride_w=stride)
  masks = {}
  if block.crossed:
    # One mask per activated stage, in the op's output order.
    if block.expand is not None and block.expand.activation is not None:
      masks[block.expand.name] = _mask(em, block.expand,
                                       block.expand.out_shape)
    if dw.activation is not None:
      masks[dw.name] = _mask(em, dw, dw.out_shape)
  em.tl(OP, [x, expand_filter, expand_bias, dw_filter, dw_bias, p_filter,
             p_bias], [y] + list(masks.values()), **options)
  if not block.crossed:
    return Emitted(y)
  filters = {dw.name: dw_filter, project.name: p_filter}
  if block.expand is not None:
    filters[block.expand.name] = expand_filter
  return Emitted(y, _backward(block, em, filters, masks))
