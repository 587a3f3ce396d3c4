"""The tables on-device re-selection needs (``tl_reselect_config.h/.cc``).

A board re-selects a new task's channels without a host: it runs
``fisher.tflite`` (TinyTrain's selection pass) over its stored samples,
ranks each channel-sparse layer's channels by Fisher potential and writes
the top K into the train model's channel variables (``lower_model(...,
variable_channels=True)``), with the trained slices copied from the full
kernel, a constant of the train model (``csrc/tl_reselect.cc``). This
module finds, from the flatbuffers, everything that code needs per layer:
the fisher output carrying its sums, K, C, the channel axis and kernel
shape, the train model's tensor that holds the full kernel (an input of the
CONCATENATION(trained, full kernel) the layer's kernel is spliced from,
matched byte for byte), and the indices of its index, trained-slice and
momentum variables in the save-order variable table (``kVariables``).
"""
import dataclasses
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from tflite_tl.flatbuffer import reader
from tflite_tl.flatbuffer.reader import VariableInfo
from tflite_tl.layers.channel_sparse import KERNEL_AXIS
from tflite_tl.layers.channel_sparse import ChannelSparseMixin

CHANNELS_SUFFIX = "/channels"
SLOTS_SUFFIX = "/channel_slots"
TRAINED_SUFFIX = "/kernel_trained"
MOMENTUM_SUFFIX = "/momentum"
_CONCATENATION = "CONCATENATION"


@dataclasses.dataclass(frozen=True)
class ReselectLayer:
  """One channel-sparse layer the board re-selects."""
  layer: str
  fisher_output: int  # index among fisher.tflite's outputs
  channels: int  # C, channels on the chosen axis
  chosen: int  # K, channels that train
  axis: int  # the channels' axis in the kernel (TF layout)
  kernel_shape: Tuple[int, int, int, int]
  full_kernel_tensor: int  # train model, subgraph 0
  channels_var: int  # indices in the save-order variable table
  slots_var: int
  trained_var: int
  momentum_var: int  # -1: plain SGD (no optimizer state)


@dataclasses.dataclass(frozen=True)
class ReselectTables:
  """Everything ``tl_reselect_config`` declares."""
  fisher_tflite: bytes
  fisher_arena: int  # measured in TFLM, the fisher model alone
  images_input: int
  labels_input: int
  batch_size: int
  layers: Tuple[ReselectLayer, ...]

  @property
  def max_channels(self) -> int:
    return max(l.channels for l in self.layers)

  @property
  def chosen(self) -> int:
    """Channels of the new choice (every layer's K)."""
    return sum(l.chosen for l in self.layers)

  @property
  def ram_bytes(self) -> int:
    """The App's sums and choice buffers (outside the arena)."""
    return 4 * (self.accumulators + self.chosen)

  @property
  def accumulators(self) -> int:
    """Floats of the per-channel sums (every layer's C)."""
    return sum(l.channels for l in self.layers)


def _tensor_bytes(model, sg, index: int) -> Optional[bytes]:
  buffer = sg.Tensors(index).Buffer()
  if buffer <= 0:
    return None
  data = model.Buffers(buffer).DataAsNumpy()
  return None if isinstance(data, int) else data.tobytes()


def full_kernel_tensor(train_tflite: bytes, kernel: np.ndarray) -> int:
  """The train model's constant tensor holding ``kernel`` (float32, TF
  layout) as an input of a CONCATENATION.

  Raises:
    ValueError: no such tensor (an int8 train step stores frozen kernels
      int8, so none of its constants is the float kernel).
  """
  want = np.ascontiguousarray(kernel, np.float32)
  want_bytes = want.tobytes()
  model = reader.root(train_tflite)
  sg = model.Subgraphs(0)
  for inputs in reader.op_inputs(train_tflite, _CONCATENATION):
    for t in inputs:
      if t < 0:
        continue
      tensor = sg.Tensors(t)
      if (tuple(tensor.ShapeAsNumpy()) == want.shape
          and reader.TYPE_NAMES[tensor.Type()] == "FLOAT32"
          and _tensor_bytes(model, sg, t) == want_bytes):
        return t
  raise ValueError(
      "The train model has no float32 constant holding the full kernel "
      f"{list(want.shape)} as a CONCATENATION input, so a board cannot "
      "copy new trained slices from it (on-device re-selection needs the "
      "float builtin train step lowered with variable_channels=True).")


def full_kernels(model) -> Dict[str, Tuple[int, np.ndarray]]:
  """{layer: (kernel axis of its channels, full kernel)} of every
  channel-sparse layer of ``model`` (the model that was lowered) that
  trains fewer channels than it has (a full choice has nothing to
  re-select)."""
  out = {}
  for layer in model.layers:
    if not isinstance(layer, ChannelSparseMixin):
      continue
    axis = KERNEL_AXIS[layer.channel_axis]
    kernel = layer.kernel.numpy()
    if len(layer.trained_channels) < kernel.shape[axis]:
      out[layer.name] = (axis, kernel)
  return out


def _index(variables: Sequence[VariableInfo], name: str,
           required: bool = True) -> int:
  for i, v in enumerate(variables):
    if not v.container and v.shared_name == name:
      return i
  if required:
    raise ValueError(f"The train model has no variable '{name}'; lower it "
                     "with variable_channels=True.")
  return -1


def reselect_tables(train_tflite: bytes,
                    variables: Sequence[VariableInfo],
                    fisher_tflite: bytes, fisher_layers: Sequence[str],
                    fisher_arena: int,
                    full_kernels: Mapping[str, Tuple[int, np.ndarray]]
                    ) -> ReselectTables:
  """The tables for the layers of ``full_kernels`` ({layer: (kernel axis of
  its channels, full kernel)}).

  Args:
    train_tflite: the builtin train step with variable channels.
    variables: its variables in save order (the board's kVariables).
    fisher_tflite: the selection pass; ``fisher_layers`` its outputs'
      layers, in output order (``FisherGraph.layers``).
    fisher_arena: its arena, measured in TFLM.

  Raises:
    ValueError: a layer has no fisher output of its channel count, no
      index variables, or no full-kernel constant.
  """
  if not full_kernels:
    raise ValueError("No channel-sparse layer to re-select.")
  outputs = reader.outputs(fisher_tflite)
  names = [i.name for i in reader.inputs(fisher_tflite)]
  labels = [i for i, n in enumerate(names) if "labels" in n]
  if len(names) != 2 or len(labels) != 1:
    raise ValueError(f"fisher.tflite takes images and labels, not {names}.")
  labels_input = labels[0]
  batch = int(reader.inputs(fisher_tflite)[labels_input].shape[0])
  layers = []
  for name, (axis, kernel) in sorted(full_kernels.items(),
                                     key=lambda kv: list(fisher_layers).index(
                                         kv[0]) if kv[0] in fisher_layers
                                     else -1):
    if name not in fisher_layers:
      raise ValueError(f"fisher.tflite scores no layer '{name}' (it scores "
                       f"{list(fisher_layers)}).")
    out = list(fisher_layers).index(name)
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
      raise ValueError(f"'{name}': kernel {kernel.shape} is not 4-D.")
    size = int(kernel.shape[axis])
    if tuple(outputs[out].shape) != (size,):
      raise ValueError(f"fisher.tflite output {out} is {outputs[out].shape}"
                       f", not the {size} channels of '{name}'.")
    channels_var = _index(variables, name + CHANNELS_SUFFIX)
    slots_var = _index(variables, name + SLOTS_SUFFIX)
    trained_var = _index(variables, name + TRAINED_SUFFIX)
    k = int(np.prod(variables[channels_var].shape))
    trained_shape = list(kernel.shape)
    trained_shape[axis] = k
    if (tuple(variables[trained_var].shape) != tuple(trained_shape)
        or int(np.prod(variables[slots_var].shape)) != size):
      raise ValueError(f"'{name}': variables do not match the kernel "
                       f"{list(kernel.shape)} with {k} channels on axis "
                       f"{axis}.")
    layers.append(ReselectLayer(
        layer=name, fisher_output=out, channels=size, chosen=k, axis=axis,
        kernel_shape=tuple(int(d) for d in kernel.shape),
        full_kernel_tensor=full_kernel_tensor(train_tflite, kernel),
        channels_var=channels_var, slots_var=slots_var,
        trained_var=trained_var,
        momentum_var=_index(variables, name + TRAINED_SUFFIX
                            + MOMENTUM_SUFFIX, required=False)))
  return ReselectTables(fisher_tflite, int(fisher_arena), 1 - labels_input,
                        labels_input, batch, tuple(layers))


def _c_string(text: str) -> str:
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_header(tables: Optional[ReselectTables], arena_bytes: int,
                  why_not: str = "") -> str:
  """``tl_reselect_config.h``: TLTL_RESELECT (1: available) and, if so,
  the board arena's share re-selection needs (``arena_bytes``: the fisher
  model's measured arena plus headroom) and ``kReselectSpec``."""
  lines = [
      "// On-device re-selection (TinyTrain's selection pass) tables.",
      "// Generated by tflite-tl; regenerate instead of editing.",
      "#ifndef TFLITE_TL_RESELECT_CONFIG_H_",
      "#define TFLITE_TL_RESELECT_CONFIG_H_",
      "",
      '#include "tl_reselect.h"',
      "",
      f"#define TLTL_RESELECT {int(tables is not None)}",
      "",
      "namespace tltl {",
      "",
  ]
  if tables is None:
    lines += [
        "// Why this export cannot re-select on the board.",
        f"constexpr const char* kReselectUnavailable = "
        f"{_c_string(why_not or 'not exported')};",
    ]
  else:
    lines += [
        "// Arena the fisher model needs alone (measured in TFLM, plus "
        "headroom);",
        "// the App's arena is at least this large.",
        f"constexpr size_t kReselectArenaBytes = {arena_bytes};",
        f"constexpr int kReselectLayers = {len(tables.layers)};",
        f"constexpr int kReselectAccumulators = {tables.accumulators};",
        f"constexpr int kReselectChosen = {tables.chosen};",
        "extern const ReselectSpec kReselectSpec;",
    ]
  lines += ["", "}  // namespace tltl", "",
            "#endif  // TFLITE_TL_RESELECT_CONFIG_H_", ""]
  return "\n".join(lines)


def config_source(tables: ReselectTables) -> str:
  """``tl_reselect_config.cc`` (only when re-selection is available)."""
  lines = [
      "// Generated by tflite-tl; regenerate instead of editing.",
      '#include "tl_reselect_config.h"',
      "",
      '#include "tl_fisher_model_data.h"',
      "",
      "namespace tltl {",
      "namespace {",
      "",
      "// {name, fisher output, C, K, kernel axis, kernel shape (TF layout),",
      "//  train-model tensor of the full kernel, variables (kVariables "
      "indices):",
      "//  channels, channel_slots, kernel_trained, its momentum (-1: none)}",
      f"const ReselectLayer kLayers[{len(tables.layers)}] = {{",
  ]
  for l in tables.layers:
    shape = ", ".join(str(d) for d in l.kernel_shape)
    lines.append(
        f"    {{{_c_string(l.layer)}, {l.fisher_output}, {l.channels}, "
        f"{l.chosen}, {l.axis}, {{{shape}}}, {l.full_kernel_tensor}, "
        f"{l.channels_var}, {l.slots_var}, {l.trained_var}, "
        f"{l.momentum_var}}},")
  lines += [
      "};",
      "",
      "}  // namespace",
      "",
      "const ReselectSpec kReselectSpec = {",
      "    g_tltl_fisher_model,",
      "    kReselectArenaBytes,",
      f"    {tables.images_input},  // images input",
      f"    {tables.labels_input},  // labels input",
      f"    {tables.batch_size},  // batch size",
      "    kLayers,",
      "    kReselectLayers,",
      "};",
      "",
      "}  // namespace tltl",
      "",
  ]
  return "\n".join(lines)
