"""Memory and compute of a sparse-update scheme, modelled (analytic).

A scheme trains the head fully, the kernels of some layers on K of their
channels, and the biases of some layers. Per training step of batch B:

* **Training state beyond inference** (bytes), following the TinyTL
  accounting of :mod:`tflite_tl.memory.training_memory` (float32
  activations; the tests check both against it):

  - stored activations: a channel-sparse conv keeps the K chosen channels of
    its input (``H*W*K*4*B``; output-axis choice: all ``Cin``); a depthwise
    conv its K input channels; the head its input;
  - masks: every layer a gradient passes through keeps what its backward
    pass reads with its weights frozen: a ReLU its 1-bit mask, a frozen conv
    nothing (memory model rules);
  - gradient buffers: the activation gradients in flight, at their peak
    over the backward pass: for each layer crossed, its output and input
    gradients (plus the zero-inserted copy a strided conv's input gradient
    correlates), and for a trained kernel its gradient's inputs (the kept
    channels and the output gradient, and their transposed copies). The
    memory model of TinyTL has no backward pass and no such term; it is
    what makes a backward pass through the early, high-resolution layers
    expensive on a device (the measured arenas in docs/tinytrain.md);
  - trained parameters (32-bit), their gradients (32-bit) and the optimizer
    state (one 32-bit buffer each with momentum, none for plain SGD).

* **Backward MACs per step**: the input gradient of every conv, depthwise
  conv and dense layer a gradient passes through (as many MACs as its
  forward pass) plus the kernel gradients of the trained kernels (K/C of the
  forward MACs for a channel-sparse layer), times B. Element-wise work
  (masks, bias sums) is not counted.

A gradient passes through exactly the nodes downstream of a trained layer,
so the backward pass stops at the earliest one.
"""
import dataclasses
from typing import Dict, Iterable, Mapping, Tuple

from tflite_tl.sparse import inventory as inventory_lib

PARAM_BYTES = 4
INPUT, OUTPUT, CHANNELS = "input", "output", "channels"
CHANNEL_AXES = (INPUT, OUTPUT)


@dataclasses.dataclass(frozen=True)
class SchemeCost:
  """Modelled cost of one scheme per training step (batch included)."""
  stored_activation_bytes: float
  mask_bytes: float
  gradient_buffer_bytes: float
  param_bytes: float
  gradient_bytes: float
  optimizer_bytes: float
  backward_macs: int
  per_layer: Tuple[Tuple[str, float, float, int], ...]  # name, stored, params, wgrad MACs

  @property
  def total_bytes(self) -> float:
    return (self.stored_activation_bytes + self.mask_bytes
            + self.gradient_buffer_bytes + self.param_bytes
            + self.gradient_bytes + self.optimizer_bytes)

  def breakdown(self) -> Tuple[Tuple[str, int], ...]:
    return (("stored_activations", int(round(self.stored_activation_bytes))),
            ("masks", int(round(self.mask_bytes))),
            ("gradient_buffers", int(round(self.gradient_buffer_bytes))),
            ("trained_parameters", int(round(self.param_bytes))),
            ("parameter_gradients", int(round(self.gradient_bytes))),
            ("optimizer_state", int(round(self.optimizer_bytes))))


class CostModel:
  """Costs of schemes on one model (see the module docstring).

  Args:
    inventory: the model's :class:`~tflite_tl.sparse.inventory.Inventory`.
    batch_size: samples per training step.
    momentum: SGD momentum (> 0 adds one state buffer per trained weight).
    channel_axis: ``"input"`` or ``"output"``: the axis the channels of a
      (non-depthwise) conv are chosen on.
  """

  def __init__(self, inventory: inventory_lib.Inventory, batch_size: int,
               momentum: float = 0.0, channel_axis: str = INPUT):
    if not isinstance(batch_size, int) or batch_size < 1:
      raise ValueError(f"batch_size must be a positive integer, got "
                       f"{batch_size!r}.")
    if channel_axis not in CHANNEL_AXES:
      raise ValueError(f"channel_axis must be one of {CHANNEL_AXES}, got "
                       f"{channel_axis!r}.")
    self.inventory = inventory
    self.batch_size = batch_size
    self.momentum = float(momentum)
    self.channel_axis = channel_axis
    self._info = inventory_lib.by_name(inventory)
    self._head = self._info[inventory.head]

  def info(self, name: str) -> inventory_lib.LayerInfo:
    return self._info[name]

  def axis(self, name: str) -> str:
    """The channel axis of ``name``'s choice (``"channels"`` for depthwise)."""
    if self._info[name].kind == inventory_lib.DEPTHWISE:
      return CHANNELS
    return self.channel_axis

  def channels(self, name: str) -> int:
    """Channels of ``name`` on its axis."""
    info = self._info[name]
    return info.out_channels if self.axis(name) == OUTPUT else info.in_channels

  def stored_bytes(self, name: str, k: int) -> float:
    """Activation bytes per step the kernel gradient of ``k`` channels reads."""
    info = self._info[name]
    channels = info.in_channels if self.axis(name) == OUTPUT else k
    return (info.spatial_in * channels * inventory_lib.ACTIVATION_BYTES
            * self.batch_size)

  def kernel_params(self, name: str, k: int) -> int:
    info = self._info[name]
    shape = info.kernel_shape
    return int(info.params // self.channels(name) * k) if shape else 0

  def weight_grad_buffer_bytes(self, name: str, k: int) -> float:
    """Gradient buffers of ``name``'s kernel gradient per step: the kept
    input channels and the output gradient (the trained ones for an output
    axis), each with a transposed copy."""
    info = self._info[name]
    out = info.spatial_out * (k if self.axis(name) == OUTPUT
                              else info.out_channels)
    kept = self.stored_bytes(name, k) / self.batch_size
    return 2.0 * (kept + out * inventory_lib.ACTIVATION_BYTES) * self.batch_size

  def weight_grad_macs(self, name: str, k: int) -> int:
    info = self._info[name]
    return int(info.macs * k // self.channels(name)) * self.batch_size

  def __call__(self, chosen: Mapping[str, int],
               bias_layers: Iterable[str] = ()) -> SchemeCost:
    """The cost of training ``chosen`` ({layer: channels}), the biases of
    ``bias_layers`` and the head."""
    bias_layers = set(bias_layers)
    batch = self.batch_size
    head = self._head
    trained = set(chosen) | bias_layers | {head.name}
    path = 0
    for name in trained:
      path |= self._info[name].downstream
    stored = head.in_channels * inventory_lib.ACTIVATION_BYTES * batch
    params = head.params + (head.out_channels if head.has_bias else 0)
    macs = head.macs * batch  # the head's kernel gradient
    masks = 0.0
    buffers = head.grad_buffer_bytes * batch
    for info in self.inventory.layers:
      if path >> info.index & 1:
        masks += info.grad_through_bytes * batch
        buffers = max(buffers, info.grad_buffer_bytes * batch)
        if info.kind != inventory_lib.OTHER:
          macs += info.macs * batch  # its input gradient
    per_layer = []
    for name, k in chosen.items():
      layer_stored = self.stored_bytes(name, k)
      layer_params = self.kernel_params(name, k)
      if name in bias_layers and self._info[name].has_bias:
        layer_params += self._info[name].out_channels
      wgrad = self.weight_grad_macs(name, k)
      buffers = max(buffers, self.weight_grad_buffer_bytes(name, k))
      stored += layer_stored
      params += layer_params
      macs += wgrad
      per_layer.append((name, layer_stored, layer_params * PARAM_BYTES,
                        wgrad))
    for name in bias_layers - set(chosen) - {head.name}:
      if self._info[name].has_bias:
        params += self._info[name].out_channels
    param_bytes = float(params * PARAM_BYTES)
    return SchemeCost(
        stored_activation_bytes=float(stored), mask_bytes=masks,
        gradient_buffer_bytes=float(buffers),
        param_bytes=param_bytes, gradient_bytes=param_bytes,
        optimizer_bytes=param_bytes if self.momentum else 0.0,
        backward_macs=int(macs), per_layer=tuple(sorted(per_layer)))

  def fits(self, cost: SchemeCost, memory_budget, compute_budget) -> bool:
    return ((memory_budget is None or cost.total_bytes <= memory_budget)
            and (compute_budget is None
                 or cost.backward_macs <= compute_budget))


def per_layer_dict(cost: SchemeCost) -> Dict[str, Tuple[float, float, int]]:
  return {name: (s, p, m) for name, s, p, m in cost.per_layer}
