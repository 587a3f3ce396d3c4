"""Arduino library and ESP-IDF component layout of an export.

Everything is generated from data (``BuildSpec``) into a {relative path:
content} dict; nothing here touches the file system, so the same inputs always
give the same bytes. The C/C++ sources that do not depend on the model come
from ``csrc/`` (library code) and ``templates/`` (application examples).
"""
import dataclasses
import functools
import os
import string
from typing import (Dict, List, Mapping, NamedTuple, Optional, Sequence,
                    Tuple)

from tflite_tl.devices import Device
from tflite_tl.firmware import c_array
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import kernel_sources
from tflite_tl.firmware import op_resolver
from tflite_tl.firmware import persistence
from tflite_tl.firmware import reselect_tables
from tflite_tl.firmware import sample_store
from tflite_tl.firmware import tensor_variables as tensor_vars
from tflite_tl.flatbuffer import shared_weights
from tflite_tl.flatbuffer.reader import ModelInfo
from tflite_tl.flatbuffer.reader import VariableInfo

_HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES_DIR = os.path.join(_HERE, "templates")
LIBRARY_SOURCES = ("tl_persist.h", "tl_persist.c", "tl_trainer.h",
                   "tl_trainer.cc", "tl_storage.h", "tl_storage_esp_partition.c",
                   "tl_storage_mbed_flash.cpp", "tl_samples.h",
                   "tl_samples.c", "tl_reselect.h", "tl_reselect.cc")
APP_SOURCES = ("tl_app.h", "tl_app.cc")
PARTITION_LABEL = "tltl_params"
# Beyond the measured arenas: the shared allocator, the variable table and
# alignment padding between the two models' allocations.
ARENA_HEADROOM = 2048
_SECTOR = 4096
ESP_TFLITE_MICRO = "espressif/esp-tflite-micro"
ESP_TFLITE_MICRO_VERSION = "^1.3.0"


class EmbeddedModel(NamedTuple):
  """A model in the library's flash image, and the C names it goes by."""
  symbol: str
  basename: str  # of its header
  file: str
  data: bytes
  what: str
  invoked: bool = True  # by the App (infer.tflite is for the user's code)


@dataclasses.dataclass(frozen=True)
class BuildSpec:
  """What the generated code needs to know (all sizes in bytes)."""
  name: str
  model_name: str
  method: str
  device: Device
  train_tflite: bytes
  predict_tflite: bytes
  infer_int8_tflite: bytes
  train_info: ModelInfo
  predict_info: ModelInfo
  infer_int8_info: ModelInfo
  train_images_input: int
  train_labels_input: int
  batch_size: int
  image_shape: Tuple[int, int, int]
  class_names: Tuple[str, ...]
  arena: int  # shared_arena_bytes() of the measured reports
  max_samples: int
  train_epochs: int = 10
  arena_in_external_ram: bool = False
  arduino_tflm_library: str = "Chirale_TensorFlowLite"
  # Where the App keeps its samples: "ram" (a ring of max_samples images) or
  # "flash" (the storage region's sample area; RAM holds one batch).
  sample_storage: str = "ram"
  # On-device re-selection (fisher.tflite and its tables), or None and why.
  reselect: Optional[reselect_tables.ReselectTables] = None
  reselect_unavailable: str = "not a TinyTrain export"

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def image_elements(self) -> int:
    h, w, c = self.image_shape
    return h * w * c

  @property
  def arena_bytes(self) -> int:
    """The board's arena: train + predict (shared head), or what the
    fisher model needs alone if that is more (re-selection runs it in the
    same arena, the trainer torn down)."""
    return max(board_arena_bytes(self.arena), self.reselect_arena_bytes)

  @property
  def reselect_arena_bytes(self) -> int:
    """The fisher model's arena on the board (0: no re-selection)."""
    if self.reselect is None:
      return 0
    return board_arena_bytes(self.reselect.fisher_arena)

  @functools.cached_property
  def tensor_variables(self) -> Tuple[tensor_vars.TensorVariable, ...]:
    """The kernel flavor's variable tensors (empty for the builtin one)."""
    return tensor_vars.tensor_variables(self.train_tflite, self.predict_tflite)

  @property
  def kernels(self) -> str:
    """"tl": parameters in variable tensors, TL_* ops shipped; "builtin":
    resource variables (VAR_HANDLE), builtin ops only."""
    return "tl" if self.tensor_variables else "builtin"

  @property
  def variables(self) -> Tuple[VariableInfo, ...]:
    """Everything a save holds, in save order."""
    if self.tensor_variables:
      return tuple(v.info for v in self.tensor_variables)
    return self.train_info.variables

  @property
  def images_int8(self) -> bool:
    """int8 images (scale 1/255, zero point -128: q = pixel - 128)."""
    return self.train_info.inputs[self.train_images_input].dtype == "INT8"

  @property
  def embeds_infer_model(self) -> bool:
    """The library carries infer.tflite unless the predict model is int8
    itself (an int8 kernel-flavor export): then it would be a second copy
    of the same int8 weights in flash (infer.tflite stays in the export
    directory for inference-only firmware)."""
    return not self.images_int8

  @functools.cached_property
  def tl_ops(self) -> Tuple[str, ...]:
    return tuple(kernel_sources.tl_ops({"train": self.train_tflite,
                                        "predict": self.predict_tflite}))

  @property
  def embedded_models(self) -> Tuple["EmbeddedModel", ...]:
    """The models the library stores in flash, in image order."""
    models = [
        EmbeddedModel("g_tltl_train_model", "tl_train_model_data",
                      "train.tflite", self.train_tflite,
                      "one SGD step per invoke"),
        EmbeddedModel("g_tltl_predict_model", "tl_predict_model_data",
                      "predict.tflite", self.predict_tflite,
                      "forward pass sharing the trained variables")]
    if self.embeds_infer_model:
      models.append(EmbeddedModel(
          "g_tltl_infer_model", "tl_infer_model_data", "infer.tflite",
          self.infer_int8_tflite,
          "int8 inference of the exported parameters", invoked=False))
    if self.reselect is not None:
      models.append(EmbeddedModel(
          "g_tltl_fisher_model", "tl_fisher_model_data", "fisher.tflite",
          self.reselect.fisher_tflite,
          "TinyTrain's selection pass for re-selection"))
    return tuple(models)

  @functools.cached_property
  def model_image(self) -> shared_weights.LinkedImage:
    """The models as the firmware stores them: one image, each weight,
    scale and zero-point vector once (``flatbuffer.shared_weights``)."""
    return shared_weights.link([m.data for m in self.embedded_models])

  @property
  def parameter_bytes(self) -> int:
    return sum(v.num_bytes for v in self.variables)

  @property
  def max_variable_bytes(self) -> int:
    return max((v.num_bytes for v in self.variables), default=0)

  @property
  def scratch_bytes(self) -> int:
    """RAM the trainer stages one variable in during Save/Load: resource
    variables are only reachable through copies; variable tensors are read
    and written in place (none)."""
    return 0 if self.tensor_variables else self.max_variable_bytes

  @property
  def storage_slot_bytes(self) -> int:
    return persistence.HEADER_BYTES + self.parameter_bytes

  @property
  def storage_flash_bytes(self) -> int:
    return 2 * _align(self.storage_slot_bytes, _SECTOR)

  @property
  def samples_in_flash(self) -> bool:
    return self.sample_storage == "flash"

  @property
  def sample_area(self) -> Optional[sample_store.SampleArea]:
    """The flash ring of sample records (None: samples in RAM)."""
    if not self.samples_in_flash:
      return None
    return sample_store.sample_area(self.image_elements, self.max_samples)

  @property
  def sample_area_bytes(self) -> int:
    area = self.sample_area
    return 0 if area is None else area.bytes

  @property
  def sample_buffer_bytes(self) -> int:
    """RAM of the samples: all of them (uint8 pixels and a label each), or
    in flash mode one batch of images and the records' index."""
    area = self.sample_area
    if area is None:
      return self.max_samples * (self.image_elements + 1)
    return self.batch_size * self.image_elements + area.ram_index_bytes

  @property
  def storage_region_bytes(self) -> int:
    """Flash the storage backend takes: the parameter slots, then the sample
    area (flash mode)."""
    return self.storage_flash_bytes + self.sample_area_bytes

  @property
  def schema_id(self) -> int:
    return persistence.schema_id(self.variables)


def shared_arena_bytes(train, predict) -> int:
  """Arena of both models in one TFLM allocator (multi-tenant).

  ``train``/``predict`` have ``head`` (planned, non-persistent tensors) and
  ``tail`` (persistent) bytes as measured for each model alone. The head is
  shared, so it is the larger of the two; tails add up. The predict model's
  tail also holds its own copy of the variable buffers, which it shares with
  the train model on the board, so this is an upper bound.
  """
  return train.tail + predict.tail + max(train.head, predict.head)


def board_arena_bytes(arena: int) -> int:
  """What the board allocates for a shared arena of ``arena`` bytes:
  ``ARENA_HEADROOM`` more, 16-byte aligned."""
  return _align(arena + ARENA_HEADROOM, 16)


def memory_consumers(spec: BuildSpec, globals_bytes: Optional[int] = None
                     ) -> Tuple[Dict[str, int], Dict[str, int]]:
  """({RAM consumer: bytes}, {flash consumer: bytes}) of the firmware.

  ``globals_bytes``: the firmware's other globals as measured on the linked
  firmware; None counts the board family's modelled allowance
  (``fit.firmware_globals``). With the arena in external RAM they stay in
  the internal SRAM and are not added to the external RAM's consumers.
  """
  ram = {
      "arena (train + predict, shared head)": spec.arena_bytes,
      "variable scratch": spec.scratch_bytes,
  }
  ram[sample_buffer_consumer(spec)] = spec.sample_buffer_bytes
  if spec.reselect is not None:
    if spec.reselect_arena_bytes > board_arena_bytes(spec.arena):
      ram = {("arena (fisher.tflite for re-selection; train + predict "
              "need less)") if k.startswith("arena") else k: v
             for k, v in ram.items()}
    ram["re-selection sums"] = spec.reselect.ram_bytes
  if not spec.arena_in_external_ram:
    other = fit_lib.firmware_globals(spec.device, globals_bytes)
    ram[other.consumer] = other.bytes
  image = spec.model_image
  flash = {f"{m.file} graph": length for m, length in zip(
      spec.embedded_models, image.lengths)}
  flash[f"constants of the {len(image.lengths)} models, stored once"] = (
      len(image.image) - sum(image.lengths))
  flash[f"{fit_lib.PARAMETER_SLOTS} (2)"] = spec.storage_flash_bytes
  if spec.samples_in_flash:
    flash[f"{fit_lib.SAMPLE_AREA} ({spec.sample_area.slots} records)"] = (
        spec.sample_area_bytes)
  return ram, flash


SAMPLE_BUFFER = fit_lib.SAMPLE_BUFFER


def sample_buffer_consumer(spec: BuildSpec) -> str:
  """The fit check's name of the samples' RAM."""
  if spec.samples_in_flash:
    return f"{SAMPLE_BUFFER} (one batch; samples in flash)"
  return SAMPLE_BUFFER


def _align(n: int, a: int) -> int:
  return (n + a - 1) // a * a


def _c_string(text: str) -> str:
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read(directory: str, name: str) -> str:
  with open(os.path.join(directory, name), "r", encoding="utf-8") as f:
    return f.read()


def _template(template_name: str, **values) -> str:
  return string.Template(_read(TEMPLATES_DIR, template_name)).substitute(values)


def check_variables(spec: BuildSpec) -> None:
  """Checks what the trainer assumes about the two models' variables.

  Every predict-model variable must be a train-model variable of the same
  size (they share one buffer on the board), and every train-model variable
  must start from a constant (ResetToExported reads it from flash). Both
  models take images of one type.
  """
  image = spec.predict_info.inputs[0].dtype
  train_image = spec.train_info.inputs[spec.train_images_input].dtype
  if image != train_image:
    raise ValueError(f"The train model takes {train_image} images and the "
                     f"predict model {image}; lower both in one call.")
  if spec.tensor_variables:
    return  # tensor_variables checked names, types and exported values
  train = {(v.container, v.shared_name): v for v in spec.variables}
  for v in spec.predict_info.variables:
    t = train.get((v.container, v.shared_name))
    if t is None or t.num_bytes != v.num_bytes:
      raise ValueError(
          f"Predict-model variable '{v.shared_name}' has no train-model "
          "variable of the same name and size; both must come from the same "
          "lowering (tflite_tl.lower.lower_model).")
  for v in spec.variables:
    if v.initial_buffer < 0:
      raise ValueError(
          f"Train-model variable '{v.shared_name}' is not initialised from a "
          "constant, so the board could not reset it to the exported value.")


def model_config_header(spec: BuildSpec) -> str:
  h, w, c = spec.image_shape
  q = spec.infer_int8_info
  in_q, out_q = q.inputs[0], q.outputs[0]
  lines = [
      f"// Model constants for {spec.model_name} ({spec.method}) on "
      f"{spec.device.name}.",
      "// Generated by tflite-tl; regenerate instead of editing.",
      "#ifndef TFLITE_TL_MODEL_CONFIG_H_",
      "#define TFLITE_TL_MODEL_CONFIG_H_",
      "",
      "#include <stddef.h>",
      "#include <stdint.h>",
      "",
      '#include "tl_trainer.h"',
      "",
      "// 1: the sketch allocates the arena in PSRAM/SDRAM.",
      f"#define TLTL_ARENA_IN_EXTERNAL_RAM {int(spec.arena_in_external_ram)}",
      "// 1: samples live in the storage region's sample area (tl_samples.h)",
      "// and RAM holds one batch; 0: a RAM ring of kMaxSamples images.",
      f"#define TLTL_SAMPLES_IN_FLASH {int(spec.samples_in_flash)}",
      "",
      "namespace tltl {",
      "",
      f"constexpr const char* kModelName = {_c_string(spec.model_name)};",
      f"constexpr const char* kMethod = {_c_string(spec.method)};",
      f"constexpr int kBatchSize = {spec.batch_size};",
      f"constexpr int kImageHeight = {h};",
      f"constexpr int kImageWidth = {w};",
      f"constexpr int kImageChannels = {c};",
      f"constexpr int kImageElements = {spec.image_elements};",
      f"constexpr int kNumClasses = {spec.num_classes};",
      f"constexpr int kMaxSamples = {spec.max_samples};",
      "// Images enter as int8 (q = pixel - 128, scale 1/255, zero point -128)"
      " or",
      "// as floats (pixel / 255).",
      f"constexpr bool kImagesInt8 = {'true' if spec.images_int8 else 'false'};",
      "// Kernel flavor of the models: TL_* ops, parameters in variable "
      "tensors.",
      f"constexpr bool kVariableTensors = "
      f"{'true' if spec.tensor_variables else 'false'};",
      "// Epochs of a bare 'T' command: what REPORT.md's on-device check ran.",
      f"constexpr int kTrainEpochs = {spec.train_epochs};",
      "",
      "// One arena for both models (shared head): measured by TFLM's "
      "recording",
      f"// allocator on the host, plus {ARENA_HEADROOM} bytes of headroom.",
      f"constexpr size_t kArenaBytes = {spec.arena_bytes};",
      "",
      "// Persistence: all train-model variables (parameters + optimizer "
      "state).",
      f"constexpr uint32_t kParameterBytes = {spec.parameter_bytes};",
      f"constexpr uint32_t kMaxVariableBytes = {spec.max_variable_bytes};",
      "// RAM Save/Load stage a variable in (0: read and written in place).",
      f"constexpr uint32_t kScratchBytes = {spec.scratch_bytes};",
      f"constexpr uint32_t kStorageSlotBytes = {spec.storage_slot_bytes};",
      f"constexpr uint32_t kSchemaId = 0x{spec.schema_id:08x}u;",
      "// Sample area after the two slots (0: samples in RAM), and the most",
      "// records it holds (modelled with 4 KB erase units).",
      f"constexpr uint32_t kSampleAreaBytes = {spec.sample_area_bytes};",
      f"constexpr uint32_t kSampleSlots = "
      f"{spec.sample_area.slots if spec.samples_in_flash else 0};",
      "",
      "// int8 inference model (infer.tflite): real = scale * (q - zero_point).",
      f"constexpr float kInferInputScale = {in_q.scale!r}f;" if in_q.scale
      is not None else "constexpr float kInferInputScale = 0.0f;",
      f"constexpr int kInferInputZeroPoint = {in_q.zero_point or 0};",
      f"constexpr float kInferOutputScale = {out_q.scale!r}f;" if out_q.scale
      is not None else "constexpr float kInferOutputScale = 0.0f;",
      f"constexpr int kInferOutputZeroPoint = {out_q.zero_point or 0};",
      "",
      "extern const char* const kClassNames[kNumClasses];",
      "extern const ModelSpec kModelSpec;",
      "",
      "}  // namespace tltl",
      "",
      "#endif  // TFLITE_TL_MODEL_CONFIG_H_",
      "",
  ]
  return "\n".join(lines)


def model_config_source(spec: BuildSpec) -> str:
  lines = [
      "// Generated by tflite-tl; regenerate instead of editing.",
      '#include "tl_model_config.h"',
      "",
      '#include "tl_predict_model_data.h"',
      '#include "tl_train_model_data.h"',
      "",
      "namespace tltl {",
      "namespace {",
      "",
      "// Saved variables in save order: {container, shared_name, bytes, index "
      "of the",
      "// exported value in the train model's buffers, variable tensor in the "
      "train",
      "// model (-1: a resource variable), same-named tensor in the predict "
      "model}.",
      f"const VariableSpec kVariables[{len(spec.variables)}] = {{",
  ]
  tensors = {v.info.shared_name: v for v in spec.tensor_variables}
  for v in spec.variables:
    t = tensors.get(v.shared_name) if not v.container else None
    where = (f"{t.train_tensor}, {t.predict_tensor}" if t is not None
             else "-1, -1")
    lines.append(f"    {{{_c_string(v.container)}, {_c_string(v.shared_name)}, "
                 f"{v.num_bytes}u, {v.initial_buffer}, {where}}},")
  lines += [
      "};",
      "",
      "}  // namespace",
      "",
      "const char* const kClassNames[kNumClasses] = {",
  ]
  lines += [f"    {_c_string(n)}," for n in spec.class_names]
  lines += [
      "};",
      "",
      "const ModelSpec kModelSpec = {",
      "    g_tltl_train_model,",
      "    g_tltl_predict_model,",
      "    kArenaBytes,",
      f"    {spec.train_images_input},  // images input",
      f"    {spec.train_labels_input},  // labels input",
      "    kBatchSize,",
      "    kImageElements,",
      "    kNumClasses,",
      "    kVariables,",
      f"    {len(spec.variables)},",
      "    kScratchBytes,",
      "    kSchemaId,",
      "};",
      "",
      "}  // namespace tltl",
      "",
  ]
  return "\n".join(lines)


def _umbrella_header(spec: BuildSpec) -> str:
  guard = c_array.header_guard(spec.name + ".h")
  return "\n".join([
      f"// {spec.name}: on-device training of {spec.model_name} "
      f"({spec.method}) with TFLite Micro.",
      "// Generated by tflite-tl.",
      f"#ifndef {guard}",
      f"#define {guard}",
      "",
      f"#include <{spec.arduino_tflm_library}.h>",
      "",
      '#include "tl_app.h"',
      *(['#include "tl_infer_model_data.h"'] if spec.embeds_infer_model
        else []),
      '#include "tl_model_config.h"',
      '#include "tl_persist.h"',
      '#include "tl_predict_model_data.h"',
      '#include "tl_samples.h"',
      '#include "tl_reselect.h"',
      '#include "tl_reselect_config.h"',
      '#include "tl_storage.h"',
      '#include "tl_train_model_data.h"',
      '#include "tl_trainer.h"',
      "",
      f"#endif  // {guard}",
      "",
  ])


def model_sources(spec: BuildSpec) -> Dict[str, str]:
  """The model-specific C/C++ files (arrays, op resolver, config)."""
  files = {}
  comment = (f"{spec.model_name} ({spec.method}) for {spec.device.name}; "
             "generated by tflite-tl.")
  models = {m.file: m.data for m in spec.embedded_models if m.invoked}
  if spec.reselect is not None:
    files["tl_reselect_config.cc"] = reselect_tables.config_source(
        spec.reselect)
  files["tl_reselect_config.h"] = reselect_tables.config_header(
      spec.reselect, spec.reselect_arena_bytes, spec.reselect_unavailable)
  image = spec.model_image
  views = [(m.symbol, m.basename, offset, length, f"{m.file}: {m.what}")
           for m, offset, length in zip(spec.embedded_models, image.offsets,
                                        image.lengths)]
  files.update(c_array.image_files(
      image.image, "g_tltl_models", "tl_models_data", views,
      comment=(f"The {len(views)} models, then their weights, scales and "
               f"zero points, each stored once ({image.saved_bytes} bytes "
               f"fewer than {image.original_bytes} in separate files).\n"
               f"{comment}")))
  files["tl_op_resolver.h"] = op_resolver.resolver_header(
      models,
      custom_registrations=kernel_sources.registrations(spec.tl_ops),
      includes=[kernel_sources.REGISTRY_HEADER] if spec.tl_ops else ())
  files["tl_model_config.h"] = model_config_header(spec)
  files["tl_model_config.cc"] = model_config_source(spec)
  return files


def _common_sources() -> Dict[str, str]:
  files = {n: _read(persistence.CSRC_DIR, n) for n in LIBRARY_SOURCES}
  files.update({n: _read(TEMPLATES_DIR, n) for n in APP_SOURCES})
  return files


def _library_sources(spec: BuildSpec) -> Dict[str, str]:
  """Every source of the library, by path under its source root: ours, the
  model's, and the TL_* kernels it uses (at their tflm_kernels/ paths)."""
  files = _common_sources()
  files.update(model_sources(spec))
  files.update(kernel_sources.sources(spec.tl_ops))
  return files


def arduino_library(spec: BuildSpec) -> Dict[str, str]:
  root = f"arduino/{spec.name}"
  files = {f"{root}/src/{n}": t for n, t in _library_sources(spec).items()}
  files[f"{root}/src/{spec.name}.h"] = _umbrella_header(spec)
  files[f"{root}/library.properties"] = "\n".join([
      f"name={spec.name}",
      "version=0.1.0",
      "author=tflite-tl",
      "maintainer=tflite-tl",
      f"sentence=On-device training of {spec.model_name} ({spec.method}) "
      "with TensorFlow Lite Micro.",
      "paragraph=Trainer API (train step, predict, power-cut-safe save and "
      "load of trained parameters) over the TFLM interpreter. Generated by "
      "tflite-tl.",
      "category=Data Processing",
      "url=https://github.com/tensorflow/tflite-micro",
      "architectures=*",
      f"depends={spec.arduino_tflm_library}",
      f"includes={spec.name}.h",
      "",
  ])
  files[f"{root}/examples/train_on_device/train_on_device.ino"] = _template(
      "sketch.ino", name=spec.name, device=spec.device.name,
      device_display=spec.device.display_name, partition=PARTITION_LABEL)
  return files


def _partition_table(spec: BuildSpec) -> str:
  params = _align(spec.storage_region_bytes, _SECTOR)
  app_offset = 0x10000
  app_size = (spec.device.flash_bytes - app_offset - params) // 0x10000 * 0x10000
  return "\n".join([
      "# Name,        Type, SubType, Offset,  Size",
      "nvs,           data, nvs,     0x9000,  0x6000",
      "phy_init,      data, phy,     0xf000,  0x1000",
      f"factory,       app,  factory, 0x{app_offset:x}, 0x{app_size:x}",
      f"{PARTITION_LABEL},   data, 0x99,    ,        0x{params:x}",
      "",
  ])


def esp_idf(spec: BuildSpec) -> Dict[str, str]:
  comp = f"esp-idf/components/{spec.name}"
  sources = _library_sources(spec)
  files = {}
  headers = sorted(n for n in sources if n.endswith(".h"))
  impls = sorted(n for n in sources if not n.endswith(".h"))
  for n in headers:
    files[f"{comp}/include/{n}"] = sources[n]
  for n in impls:
    files[f"{comp}/src/{n}"] = sources[n]
  srcs = "\n".join(f'    "src/{n}"' for n in impls)
  files[f"{comp}/CMakeLists.txt"] = "\n".join([
      "idf_component_register(",
      "  SRCS",
      srcs,
      '  INCLUDE_DIRS "include"',
      # espressif/esp-tflite-micro comes from idf_component.yml, which the
      # component manager adds to this component's requirements.
      "  PRIV_REQUIRES esp_partition)",
      "",
  ])
  files[f"{comp}/idf_component.yml"] = "\n".join([
      f'description: "On-device training of {spec.model_name} '
      f'({spec.method}), generated by tflite-tl"',
      'version: "0.1.0"',
      "dependencies:",
      '  idf: ">=5.0"',
      f'  {ESP_TFLITE_MICRO}: "{ESP_TFLITE_MICRO_VERSION}"',
      "",
  ])
  default = "y" if spec.arena_in_external_ram else "n"
  files[f"{comp}/Kconfig"] = "\n".join([
      f'menu "{spec.name} (tflite-tl)"',
      "",
      "config TLTL_ARENA_IN_PSRAM",
      '    bool "Place the TFLM arena in PSRAM"',
      "    depends on SPIRAM",
      f"    default {default}",
      "    help",
      f"        The arena needs {spec.arena_bytes} bytes. PSRAM holds larger",
      "        arenas than internal RAM at the cost of slower access.",
      "",
      "endmenu",
      "",
  ])
  app = "esp-idf/example"
  files[f"{app}/CMakeLists.txt"] = "\n".join([
      "cmake_minimum_required(VERSION 3.16)",
      'set(EXTRA_COMPONENT_DIRS "${CMAKE_CURRENT_LIST_DIR}/../components")',
      "include($ENV{IDF_PATH}/tools/cmake/project.cmake)",
      f"project({spec.name}_example)",
      "",
  ])
  files[f"{app}/main/CMakeLists.txt"] = "\n".join([
      'idf_component_register(SRCS "main.cc"',
      f"  PRIV_REQUIRES {spec.name})",
      "",
  ])
  files[f"{app}/main/main.cc"] = _template(
      "esp_main.cc", name=spec.name, partition=PARTITION_LABEL)
  files[f"{app}/partitions.csv"] = _partition_table(spec)
  mb = spec.device.flash_bytes // (1024 * 1024)
  defaults = [
      "CONFIG_PARTITION_TABLE_CUSTOM=y",
      'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions.csv"',
      f"CONFIG_ESPTOOLPY_FLASHSIZE_{mb}MB=y",
      "CONFIG_ESP_MAIN_TASK_STACK_SIZE=8192",
  ]
  if spec.arena_in_external_ram:
    defaults += ["CONFIG_SPIRAM=y", "CONFIG_TLTL_ARENA_IN_PSRAM=y"]
  files[f"{app}/sdkconfig.defaults"] = "\n".join(defaults) + "\n"
  return files


def package_files(spec: BuildSpec) -> Dict[str, object]:
  """Every generated file of an export except the reports."""
  files: Dict[str, object] = {
      "train.tflite": spec.train_tflite,
      "predict.tflite": spec.predict_tflite,
      "infer.tflite": spec.infer_int8_tflite,
  }
  files.update(arduino_library(spec))
  if "esp-idf" in spec.device.frameworks:
    files.update(esp_idf(spec))
  return files
