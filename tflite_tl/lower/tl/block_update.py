"""The backward of an int8 inverted-residual block whose depthwise trains,
as one TL_INVERTED_RESIDUAL_UPDATE.

TinyTrain trains chosen depthwise channels inside MobileNetV2 blocks whose
1x1 expand conv stays frozen, and at larger budgets chosen channels of the
same block's project conv too. Unfused, such a block's backward is
TL_CONV_INPUT_GRAD or TL_CONV_UPDATE (project) -> TL_DEPTHWISE_UPDATE (its
step and the fused input gradient) -> TL_CONV_INPUT_GRAD (expand), and the
two expanded-width float maps between them (the project's and the
depthwise's input gradients) are alive together while the depthwise update
runs: the train step's arena peak. TL_INVERTED_RESIDUAL_UPDATE
(tflm_kernels/reference/inverted_residual_update.h) streams the same
arithmetic by rows or by channel, bit-identical, so neither map is a tensor; a trained
project's step (TL_CONV_UPDATE's, from grad_output and its saved input)
runs in the same op after the stream, through which its filter went first.

The block is recognised from the three rules' sides, with the emitter's
backward-fusion hooks (as TL_DEPTHWISE_CHAIN_UPDATE is):

- the frozen expand conv (1x1, ReLU/ReLU6, its input gradient needed, its
  output read only by the depthwise) offers its mask, filter and input
  shape (``offer_expand``, under ``Emitter.fusable_backward``);
- the int8 depthwise whose weights train (rules_sparse) takes that offer if
  its only consumer is a frozen linear 1x1 project conv, directly or through
  a standalone ReLU/ReLU6 (``take_expand``), and marks the project's input
  as accepting a deferred input gradient
  (``Emitter.accepts_deferred_input_grad``);
- that project conv then leaves its input gradient to the depthwise
  (``defer_project`` from conv_rule; a channel-sparse project whose chosen
  channels or bias train, ``defer_trained_project`` from rules_sparse, with
  its update as well: Grad.deferred; a ReLU on the way adds its mask,
  ``through_relu``), and the depthwise's backward emits the fused op
  (``emit``) and hands the expand conv its result (``Emitter.fused_backward``).
- Where the backward stops at the depthwise (the earliest trained layer:
  its input gradient is not needed), the depthwise marks its project the
  same way without an expand (``take_project_only``) and emits the op
  without an input gradient: the updates alone, from dz streamed alone, so
  the project's expanded-width input gradient is never a tensor either.

Anything else (a trained expand, a project training other than as a
channel-sparse conv, a depthwise whose bias alone trains, a float graph)
keeps the unfused ops. The TF reference of a
train step computes the unfused layers, like for TL_DEPTHWISE_CHAIN_UPDATE:
the op has no TF adapter, its goldens and tests compare it with the chain.
"""
import dataclasses
from typing import Optional

from tflite_tl._compat import keras
from tflite_tl.layers import channel_sparse as cs
from tflite_tl.lower.tl.emitter import Emitter
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.flatbuffer_writer import Tensor
from tflite_tl.lower.tl.model_graph import relu_kind
from tflite_tl.lower.tl.rule_base import Call

OP = "TL_INVERTED_RESIDUAL_UPDATE"
# False keeps the unfused three ops (tests compare the two graphs).
FUSED = True


@dataclasses.dataclass(frozen=True)
class FrozenExpand:
  """A frozen 1x1 expand conv's input-gradient needs."""
  name: str
  mask: Tensor     # its ReLU/ReLU6 mask
  filter: Tensor   # int8 [E, 1, 1, Cin]
  input_shape: tuple


@dataclasses.dataclass(frozen=True)
class ProjectUpdate:
  """A channel-sparse project conv's TL_CONV_UPDATE inputs (rules_sparse),
  carried into the fused op."""
  saved_input: Optional[Tensor]  # int8 [N, Ho, Wo, E] or [N, Ho, Wo, K]
  channels: Optional[Tensor]     # int32 [K], with filter_var
  filter_var: Optional[Tensor]   # float master of the chosen channels
  bias_var: Optional[Tensor]
  bias_q_var: Optional[Tensor]
  channel_axis: int              # 0 output, 1 input channels


@dataclasses.dataclass(frozen=True)
class Project:
  """A linear 1x1 project conv whose input gradient is deferred, its update
  if it trains, and the mask of the standalone ReLU between it and the
  depthwise, if any (a channel-sparse depthwise has no fused activation:
  model_graph fuses ReLUs into stock layers only)."""
  name: str
  filter: Tensor   # int8 [Cout, 1, 1, E] (a variable when it trains)
  relu_mask: Optional[Tensor] = None
  update: Optional[ProjectUpdate] = None


def through_relu(g: Grad, mask: Optional[Tensor]) -> Grad:
  """A deferred gradient through a standalone ReLU (rules_simple): still the
  project's output gradient, now carrying the ReLU's mask."""
  if (not isinstance(g.deferred, Project)
      or g.deferred.relu_mask is not None):
    raise AssertionError(f"unexpected deferred gradient {g.deferred!r}")
  return dataclasses.replace(
      g, deferred=dataclasses.replace(g.deferred, relu_mask=mask))


def _plain_pointwise(node) -> bool:
  layer = node.layer
  return (isinstance(layer, keras.layers.Conv2D)
          and not isinstance(layer, keras.layers.DepthwiseConv2D)
          and tuple(layer.kernel_size) == (1, 1)
          and tuple(layer.strides) == (1, 1)
          and tuple(layer.dilation_rate) == (1, 1)
          and int(getattr(layer, "groups", 1)) == 1)


def offer_expand(call: Call, filter_: Tensor, own_mask: Optional[Tensor],
                 pointwise: bool) -> None:
  """From conv_rule: a frozen int8 1x1 conv with a ReLU/ReLU6 whose input
  gradient is needed offers its backward to the depthwise reading it."""
  if (not FUSED or not call.policy.int8 or not call.policy.training
      or not pointwise or own_mask is None or call.node.has_trained
      or not call.need_input_grad(0)):
    return
  out_id = call.node.activation_output_id or call.node.output_id
  call.em.fusable_backward[out_id] = FrozenExpand(
      call.name, own_mask, filter_, tuple(call.node.in_shapes[0]))


def take_expand(call: Call) -> Optional[FrozenExpand]:
  """From the int8 depthwise whose weights train: the expand conv it fuses
  with, if it reads one (and alone) and its output goes only to a linear 1x1
  project conv, frozen or channel-sparse; then that conv will defer its
  input gradient (and its update)."""
  x_id = call.node.input_ids[0]
  up = call.em.fusable_backward.get(x_id)
  graph = call.graph
  if (not FUSED or not isinstance(up, FrozenExpand)
      or graph.consumers.get(x_id) != [call.node.index]):
    return None
  return up if _take_project(call) else None


def take_project_only(call: Call) -> bool:
  """From the int8 depthwise whose weights train where the backward stops
  (its input gradient is not needed: the earliest trained layer): whether
  its project conv (as in take_expand) defers its input gradient and update
  to this depthwise, for one TL_INVERTED_RESIDUAL_UPDATE without an input
  gradient (``emit`` with ``up`` None)."""
  return FUSED and _take_project(call)


def _take_project(call: Call) -> bool:
  """Whether the depthwise's output goes only to a linear 1x1 project conv,
  frozen or channel-sparse (through a standalone ReLU or not); then that
  conv's input gradient is marked deferrable."""
  graph = call.graph
  node = call.node
  out_id = node.activation_output_id or node.output_id
  if node.is_model_output or (node.activation_output_id is not None and len(
      graph.consumers.get(node.output_id, [])) != 1):
    return False
  users = graph.consumers.get(out_id, [])
  if len(users) != 1:
    return False
  relu = graph.nodes[users[0]]
  if (node.activation is None and relu_kind(relu.layer) is not None
      and relu.fused_into is None and not relu.is_model_output):
    # A standalone ReLU between the depthwise and the project conv.
    out_id = relu.output_id
    users = graph.consumers.get(out_id, [])
    if len(users) != 1:
      return False
  project = graph.nodes[users[0]]
  # A trained project is fused only as a channel-sparse conv
  # (defer_trained_project): a stock one trains through conv_rule's ops.
  if (not _plain_pointwise(project)
      or (project.has_trained
          and not isinstance(project.layer, cs.ChannelSparseConv2D))
      or project.activation is not None
      or getattr(project.layer.activation, "__name__", "linear") != "linear"):
    return False
  call.em.accepts_deferred_input_grad.add(out_id)
  return True


def defer_project(call: Call, filter_: Tensor, own_mask: Optional[Tensor],
                  pointwise: bool, backward):
  """From conv_rule: a frozen linear 1x1 conv reading such a depthwise
  leaves its input gradient to the depthwise's fused op."""
  x_id = call.node.input_ids[0]
  if (backward is None or not pointwise or own_mask is not None
      or call.node.has_trained
      or x_id not in call.em.accepts_deferred_input_grad
      or call.graph.consumers.get(x_id) != [call.node.index]):
    return backward
  down = Project(call.name, filter_)
  # The incoming gradient's mask (a downstream activation's) rides along:
  # the fused op applies it as grad_output_mask.
  return lambda g: [Grad(g.tensor, g.mask, deferred=down)]


def defer_trained_project(call: Call, filter_: Tensor,
                          update: ProjectUpdate) -> Optional[Project]:
  """From rules_sparse: a channel-sparse 1x1 project conv (int8, linear)
  reading such a depthwise leaves its input gradient and its update to the
  depthwise's fused op; its backward then returns
  ``Grad(g.tensor, g.mask, deferred=<this>)``. None: it keeps its own
  TL_CONV_UPDATE."""
  x_id = call.node.input_ids[0]
  if (not FUSED or not call.policy.int8 or not call.policy.training
      or x_id not in call.em.accepts_deferred_input_grad
      or call.graph.consumers.get(x_id) != [call.node.index]
      or not _plain_pointwise(call.node) or call.node.activation is not None):
    return None
  return Project(call.name, filter_, update=update)


def emit(em: Emitter, g: Grad, up: Optional[FrozenExpand], *,
         depthwise_filter: Tensor,
         depthwise_mask: Optional[Tensor], saved_input: Tensor,
         channels: Optional[Tensor], filter_var: Tensor,
         bias_var: Optional[Tensor], bias_q_var: Optional[Tensor],
         learning_rate: float, qas: bool, geometry: dict):
  """The block's backward from the project's output gradient ``g`` (its
  ``deferred`` a Project): the expand conv's input gradient, which is also
  handed to the expand conv's own backward; with ``up`` None (the backward
  stops at this depthwise) the updates alone, no input gradient."""
  down = g.deferred
  pu = down.update or ProjectUpdate(None, None, None, None, None, 0)
  if depthwise_mask is not None and down.relu_mask is not None:
    raise AssertionError("a fused activation's gradient arrived masked")
  if depthwise_mask is None:
    depthwise_mask = down.relu_mask
  dx = (em.writer.activation(f"{up.name}/grad_input", up.input_shape)
        if up is not None else None)
  em.tl(OP, [g.tensor, g.mask, down.filter, depthwise_filter, depthwise_mask,
             up.filter if up else None, up.mask if up else None, saved_input,
             channels, filter_var, bias_var, bias_q_var, pu.saved_input,
             pu.channels, pu.filter_var, pu.bias_var, pu.bias_q_var],
        [dx] if dx is not None else [], learning_rate=learning_rate,
        project_channel_axis=pu.channel_axis, qas=qas, **geometry)
  if up is None:
    return [None]  # the backward ends here
  em.fused_backward[up.name] = [Grad(dx)]
  # The depthwise's "input gradient": the expand conv's backward returns
  # the fused one instead (its input's).
  return [Grad(dx)]
