"""Memory and compute of a sparse-update scheme, modelled (analytic).

A scheme trains the head fully, the kernels of some layers on K of their
channels, and the biases of some layers. Per training step of batch B:

* **What the backward pass reads**, following the TinyTL accounting of
  :mod:`tflite_tl.memory.training_memory` (float32 activations; the tests
  check both against it): a channel-sparse conv keeps the K chosen channels
  of its input (``H*W*K*4*B``; output-axis choice: all ``Cin``), a depthwise
  conv its K input channels, the head its input, and every layer a gradient
  passes through keeps what its backward pass reads with its weights frozen
  (a ReLU its mask, a frozen conv nothing). TinyTL counts a mask as 1 bit
  per element; the builtin lowering stores TFLM's smallest type, a 1-byte
  bool (``mask_bits``, default 8).

* **Training state beyond inference** (bytes, what the budget bounds):

  - activations: how far the activation peak of the training step exceeds
    that of inference. Inference holds, at each layer, its input and output
    and the tensors later layers still read (a shortcut). The forward pass
    of the training step holds as well everything kept so far; its
    backward pass, at each layer it crosses, the output and input
    gradients (plus the zero-inserted copy a strided conv's input gradient
    correlates; for a trained kernel the output gradient and transposed
    copies of it and of the kept channels), the gradients of live tensors
    (a shortcut's, waiting to be summed) and everything kept by the layer
    and those before it.
    The peaks are maxima over layers, so what the backward pass needs after
    the forward peak has passed reuses that memory, as an arena planner
    does. TinyTL's memory model has no backward pass; a backward pass
    through the early, high-resolution layers is what makes it expensive;
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
  inference_peak_bytes: float
  forward_peak_bytes: float
  backward_peak_bytes: float
  param_bytes: float
  gradient_bytes: float
  optimizer_bytes: float
  backward_macs: int
  per_layer: Tuple[Tuple[str, float, float, int], ...]  # name, stored, params, wgrad MACs

  @property
  def activation_bytes(self) -> float:
    """Activation peak of the training step beyond inference's."""
    return max(0.0, max(self.forward_peak_bytes, self.backward_peak_bytes)
               - self.inference_peak_bytes)

  @property
  def total_bytes(self) -> float:
    return (self.activation_bytes + self.param_bytes + self.gradient_bytes
            + self.optimizer_bytes)

  @property
  def persisted_bytes(self) -> float:
    """What a board saves to keep what it learnt: the trained parameters
    and their optimizer state (the firmware's parameter slots in flash)."""
    return self.param_bytes + self.optimizer_bytes

  def saved(self) -> Tuple[Tuple[str, int], ...]:
    """What the backward pass reads (memory-model accounting)."""
    return (("stored_activations", int(round(self.stored_activation_bytes))),
            ("masks", int(round(self.mask_bytes))))

  def breakdown(self) -> Tuple[Tuple[str, int], ...]:
    """``total_bytes`` by part."""
    return (("activations_beyond_inference",
             int(round(self.activation_bytes))),
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
    mask_bits: bits per element of a ReLU mask (8: the builtin lowering's
      bool; 1: TinyTL's accounting).
    forward_bytes: bytes per forward activation element of the step the
      budget is for: 4 (float32), or 1 for an int8 forward pass (the kernel
      flavor's int8 precision), whose inference activations and kept input
      channels are int8 while every gradient stays float32. Without it, an
      int8 step's float backward pass would hide below a float32 inference
      peak it never has.
  """

  def __init__(self, inventory: inventory_lib.Inventory, batch_size: int,
               momentum: float = 0.0, channel_axis: str = INPUT,
               mask_bits: int = 8, forward_bytes: int = 4):
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
    if mask_bits not in (1, 8):
      raise ValueError(f"mask_bits must be 1 or 8, got {mask_bits!r}.")
    self.mask_bits = mask_bits
    if forward_bytes not in (1, 4):
      raise ValueError(f"forward_bytes must be 4 (float32) or 1 (int8), got "
                       f"{forward_bytes!r}.")
    # Inventory sizes are float32 activations; forward tensors scale by this.
    self._forward_scale = forward_bytes / inventory_lib.ACTIVATION_BYTES
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
            * self._forward_scale * self.batch_size)

  def kernel_params(self, name: str, k: int) -> int:
    info = self._info[name]
    shape = info.kernel_shape
    return int(info.params // self.channels(name) * k) if shape else 0

  def weight_grad_buffer_bytes(self, name: str, k: int) -> float:
    """Gradient buffers of ``name``'s kernel gradient per step beyond the
    kept channels: the output gradient (the trained channels of it for an
    output axis), transposed copies of both."""
    info = self._info[name]
    out = info.spatial_out * (k if self.axis(name) == OUTPUT
                              else info.out_channels)
    kept = self.stored_bytes(name, k) / self.batch_size
    return (kept + 2.0 * out * inventory_lib.ACTIVATION_BYTES) * self.batch_size

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
    layers = self.inventory.layers
    trained = set(chosen) | bias_layers | {head.name}
    path = 0
    for name in trained:
      path |= self._info[name].downstream
    kept = [0.0] * len(layers)  # bytes per step each node keeps
    buffers = [None] * len(layers)  # backward buffers at each node crossed
    kept[head.index] = (head.in_channels * inventory_lib.ACTIVATION_BYTES
                        * self._forward_scale * batch)
    buffers[head.index] = head.grad_buffer_bytes * batch
    params = head.params + (head.out_channels if head.has_bias else 0)
    macs = head.macs * batch  # the head's kernel gradient
    for info in layers:
      if path >> info.index & 1:
        kept[info.index] += self._through(info) * batch
        buffers[info.index] = info.grad_buffer_bytes * batch
        if info.kind != inventory_lib.OTHER:
          macs += info.macs * batch  # its input gradient
    per_layer = []
    for name, k in chosen.items():
      info = self._info[name]
      layer_stored = self.stored_bytes(name, k)
      layer_params = self.kernel_params(name, k)
      if name in bias_layers and info.has_bias:
        layer_params += info.out_channels
      wgrad = self.weight_grad_macs(name, k)
      kept[info.index] += layer_stored
      buffers[info.index] = max(buffers[info.index] or 0.0,
                                self.weight_grad_buffer_bytes(name, k))
      params += layer_params
      macs += wgrad
      per_layer.append((name, layer_stored, layer_params * PARAM_BYTES,
                        wgrad))
    for name in bias_layers - set(chosen) - {head.name}:
      if self._info[name].has_bias:
        params += self._info[name].out_channels
    inference = forward = backward = 0.0
    kept_before = 0.0
    scale = self._forward_scale
    for info in layers:
      held = info.held_bytes * scale * batch
      inference = max(inference, held)
      forward = max(forward, held + kept_before)
      kept_before += kept[info.index]
      if buffers[info.index] is not None:
        backward = max(backward, buffers[info.index]
                       + info.live_bytes * scale * batch + kept_before)
    stored = sum(kept) - sum(self._through(self._info[n]) * batch
                             for n in self.inventory.names()
                             if path >> self._info[n].index & 1)
    param_bytes = float(params * PARAM_BYTES)
    return SchemeCost(
        stored_activation_bytes=float(stored),
        mask_bytes=float(sum(kept) - stored),
        inference_peak_bytes=inference, forward_peak_bytes=forward,
        backward_peak_bytes=backward,
        param_bytes=param_bytes, gradient_bytes=param_bytes,
        optimizer_bytes=param_bytes if self.momentum else 0.0,
        backward_macs=int(macs), per_layer=tuple(sorted(per_layer)))

  def bias_layers(self, chosen: Iterable[str], mode) -> list:
    """The layers whose bias trains: ``"chosen"`` (or True), the chosen
    layers'; ``"downstream"``, also every conv/depthwise bias the gradient
    reaches anyway (they need no stored activation); ``"none"`` (False)."""
    if mode is True or mode == "chosen":
      return sorted(chosen)
    if mode is False or mode == "none":
      return []
    if mode != "downstream":
      raise ValueError(f"train_bias must be 'chosen', 'downstream' or "
                       f"'none', got {mode!r}.")
    path = 0
    for name in chosen:
      path |= self._info[name].downstream
    return sorted(set(chosen) | {
        l.name for l in self.inventory.layers
        if path >> l.index & 1 and l.has_bias and l.name != self._head.name
        and l.kind in (inventory_lib.CONV, inventory_lib.DEPTHWISE)})

  def _through(self, info) -> float:
    """What ``info`` keeps per sample when a gradient passes through it."""
    if info.is_mask:
      return info.grad_through_bytes * self.mask_bits
    return info.grad_through_bytes

  def fits(self, cost: SchemeCost, memory_budget, compute_budget,
           parameter_budget=None) -> bool:
    """Whether ``cost`` is within every budget given (None: unbounded).
    ``parameter_budget`` bounds :attr:`SchemeCost.persisted_bytes`."""
    return ((memory_budget is None or cost.total_bytes <= memory_budget)
            and (compute_budget is None
                 or cost.backward_macs <= compute_budget)
            and (parameter_budget is None
                 or cost.persisted_bytes <= parameter_budget))


def per_layer_dict(cost: SchemeCost) -> Dict[str, Tuple[float, float, int]]:
  return {name: (s, p, m) for name, s, p, m in cost.per_layer}
