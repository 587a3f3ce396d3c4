"""What an export is asked for (``ExportConfig``, the CLI's flags) and the
checks that run before any heavy work."""
import dataclasses
import os
from typing import Optional, Tuple

from tflite_tl import atomic
from tflite_tl import data as data_lib
from tflite_tl import devices as devices_lib
from tflite_tl import models as models_lib
from tflite_tl import rewrite as rewrite_lib
from tflite_tl import sparse as sparse_lib
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import instruction_counts
from tflite_tl.tflm.tflm_library import TFLM_ROOT_ENV
from tflite_tl.pipeline import flag_checks
from tflite_tl.train import recipe as recipe_lib

# Shipped backbones tried in order when --model is not given: the first is
# the one known to train within a 256 KB board with the default method (see
# docs/export.md); zoo models with random weights only if none is shipped.
DEFAULT_MODELS = ("tiny", "mcunet", "mobilenet_v2")
DEFAULT_METHOD = "tinytl_lb"
DEFAULT_DATASET = "animal_mnist"
DEFAULT_DEVICE = "nano33ble"
BATCH_CANDIDATES = (1, 2, 4, 8)
# Sample buffer while the batch is chosen, and the cap of the automatic one.
MIN_SAMPLES = 16
MAX_AUTO_SAMPLES = 256
OPTIMIZERS = ("adam", "sgd")
KERNEL_CHOICES = ("auto", "builtin", "tl")
PRECISION_CHOICES = ("auto", "float", "int8")
# Methods that select what to train on the user's samples.
SELECTING_METHODS = ("tinytrain",)
SPARSE_METHODS = ("tinytrain", "sparse_update")
# Below this much RAM for the arena nothing can be exported: TFLM's
# interpreter structures and the smallest train step of the zoo (tiny at 8 px,
# batch 1) take more. A profile this small is usually a unit slip (KB for
# bytes), so it is refused before any work rather than after lowering.
MIN_ARENA_RAM = 16 * 1024
# Present in every export: an existing --out is replaced only if it has one.
OUTPUT_MARKER = "report.json"


class ExportError(RuntimeError):
  """An export could not be made; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """All choices of an export (the CLI flags)."""
  out: str
  model: Optional[str] = None  # None: the first shipped default backbone
  method: str = DEFAULT_METHOD
  dataset: str = DEFAULT_DATASET
  device: str = DEFAULT_DEVICE
  resolution: Optional[int] = None  # None: the backbone's own
  batch: Optional[int] = None  # None: the largest of 1/2/4/8 that fits
  # On-device SGD step: larger ones undo the host fine-tune on a small
  # buffer (measurements in docs/export.md).
  learning_rate: float = 0.001
  momentum: float = 0.0
  label_smoothing: float = 0.0
  # Host fine-tuning (tflite_tl.train.recipe); None: the recipe's value.
  finetune_epochs: Optional[int] = None
  finetune_learning_rate: Optional[float] = None
  finetune_optimizer: str = recipe_lib.OPTIMIZER
  finetune_batch: int = recipe_lib.BATCH_SIZE
  samples_per_class: Optional[int] = None  # None: the whole training split
  calibration_images: int = 100
  qat_epochs: int = 0
  verify_steps: int = 3
  parity_tolerance: float = 1e-4
  verify_images: int = 100
  # The board's sample buffer; None: as many as the RAM left after the arena
  # holds (the margin stays free), between MIN_ and MAX_AUTO_SAMPLES.
  max_samples: Optional[int] = None
  device_epochs: int = 5  # the app's bare 'T'; the on-device TFLM check
  sram_margin: float = fit_lib.DEFAULT_SRAM_MARGIN
  flash_reserve: int = fit_lib.DEFAULT_FLASH_RESERVE
  arena_in_external_ram: bool = False
  # Where the board keeps its samples: "ram", "flash" (the storage region's
  # sample area; RAM holds one batch) or "auto" (RAM when the whole sample
  # buffer fits the RAM budget, else flash on a board with storage).
  sample_storage: str = "auto"
  devices_files: Tuple[str, ...] = ()
  # Lowering flavor: "auto" tries the TL kernels with an int8 forward first
  # (when $TFLM_ROOT is set), then the TL kernels in float, then builtins.
  kernels: str = "auto"
  precision: str = "auto"
  qas: bool = True  # int8: quantization-aware scaling of the updates
  # TinyTrain's budgets (None: the memory budget the board leaves).
  memory_budget: Optional[int] = None
  compute_budget: Optional[int] = None
  selection_criterion: Optional[str] = None
  selection_allocation: Optional[str] = None  # tinytrain (sparse.ALLOCATIONS)
  name: str = "tltl_model"
  arduino_tflm_library: str = "Chirale_TensorFlowLite"
  # Build the firmware for Cortex-M4F, link it with the board's memory and
  # run it in QEMU: instruction counts and the measured globals in REPORT.md
  # (needs TFLM_ROOT, arm-none-eabi-gcc, qemu-system-arm).
  instruction_counts: bool = False
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class Flavor:
  """How the train step is lowered (``tflite_tl.lower.lower_model``)."""
  kernels: str  # "builtin" | "tl"
  precision: str  # "float" | "int8"

  def __str__(self):
    return f"{self.kernels} kernels, {self.precision}"


@dataclasses.dataclass(frozen=True)
class Plan:
  """What the validated config resolves to."""
  device: devices_lib.Device
  model: str  # backbone name
  pretrained: bool  # a shipped backbone (else zoo weights, random)
  # Lowering flavors to try, in order of preference (the first that fits
  # and verifies is exported), and why they are these.
  flavors: Tuple[Flavor, ...] = (Flavor("builtin", "float"),)
  flavor_reason: str = ""


def tl_kernels_available() -> bool:
  """The TL_* kernels run (and are verified) in TFLM built from $TFLM_ROOT."""
  return bool(os.environ.get(TFLM_ROOT_ENV))


def plan_flavors(cfg: ExportConfig) -> Tuple[Tuple[Flavor, ...], str]:
  """The flavors ``cfg`` allows, most memory-efficient first, and why."""
  if cfg.kernels not in KERNEL_CHOICES:
    raise ExportError(f"Unknown --kernels '{cfg.kernels}'. Supported: "
                      f"{', '.join(KERNEL_CHOICES)}.")
  if cfg.precision not in PRECISION_CHOICES:
    raise ExportError(f"Unknown --precision '{cfg.precision}'. Supported: "
                      f"{', '.join(PRECISION_CHOICES)}.")
  if cfg.kernels == "builtin":
    # Builtin int8 = int8 frozen weights (DEQUANTIZE) in a float32 step:
    # flash like infer.tflite, arena like the float step (docs/lower.md).
    # Only on request: "auto" keeps builtin float (see docs/lower.md).
    precision = "int8" if cfg.precision == "int8" else "float"
    return ((Flavor("builtin", precision),),
            f"--kernels=builtin{' --precision=int8' * (precision == 'int8')}")
  available = tl_kernels_available()
  if cfg.kernels == "tl":
    if not available:
      raise ExportError(
          f"--kernels=tl needs the TL_* training kernels in TFLM: set "
          f"{TFLM_ROOT_ENV}=/path/to/tflite-micro (a tflite-micro source "
          "tree; it is built once and cached), or use --kernels=builtin.")
    if cfg.momentum:
      raise ExportError(f"--momentum={cfg.momentum}: the TL kernels train "
                        "with plain SGD; use --momentum=0 or "
                        "--kernels=builtin.")
  # Builtin float before builtin int8: int8 frozen weights (DEQUANTIZE in a
  # float32 step) take infer.tflite's flash but a little more arena than
  # float (docs/lower.md), so they are the builtin answer to a model whose
  # float weights do not fit the flash.
  builtin = tuple(Flavor("builtin", p) for p in (
      ("float", "int8") if cfg.precision == "auto" else (cfg.precision,)))
  if cfg.kernels == "auto" and not available:
    return builtin, (
        f"auto: {TFLM_ROOT_ENV} is not set, so only TFLM's builtin ops are "
        "available (set it to use the smaller TL kernels and int8 "
        "activations); the first of " + ", ".join(f"[{f}]" for f in builtin)
        + " that fits the board and passes the TFLM parity check")
  if cfg.kernels == "auto" and cfg.momentum:
    return builtin, (
        f"auto: --momentum={cfg.momentum} needs the builtin flavor (the TL "
        "kernels train with plain SGD)")
  precisions = (("int8", "float") if cfg.precision == "auto"
                else (cfg.precision,))
  flavors = tuple(Flavor("tl", p) for p in precisions)
  if cfg.kernels == "auto":
    flavors += builtin
  reason = ("auto: the TL kernels are available (" + TFLM_ROOT_ENV +
            " is set); the first of " + ", ".join(
                f"[{f}]" for f in flavors) + " that fits the board and "
            "passes the TFLM parity check" if len(flavors) > 1
            else f"--kernels={cfg.kernels} --precision={cfg.precision}")
  return flavors, reason


def instruction_counts_unsupported(cfg: ExportConfig,
                                   device: devices_lib.Device
                                   ) -> Optional[str]:
  """Why --instruction_counts cannot measure this export (None: it can)."""
  why = instruction_counts.unsupported_device(device)
  if why is None and cfg.arena_in_external_ram:
    why = ("the QEMU firmware links the arena in SRAM, not with "
           "--arena_in_external_ram")
  return why


def check_instruction_counts(cfg: ExportConfig,
                             device: devices_lib.Device) -> None:
  """--instruction_counts: the board and the tools it needs, in one line."""
  why = instruction_counts_unsupported(cfg, device)
  if why:
    raise ExportError(f"--instruction_counts: {why}; export without "
                      "--instruction_counts.")
  missing = instruction_counts.missing_requirements()
  if missing:
    raise ExportError(
        "--instruction_counts needs " + ", ".join(
            instruction_counts.REQUIREMENTS) + "; missing: "
        + "; ".join(missing) + ". Install them (scripts/kernels_ci.sh does) "
        "or export without --instruction_counts.")


def validate(cfg: ExportConfig) -> Plan:
  """Checks every input; raises with the fix before any heavy work."""
  device = devices_lib.get_device(cfg.device, cfg.devices_files)
  capacity = device.arena_capacity(cfg.arena_in_external_ram)  # raises
  if capacity < MIN_ARENA_RAM:
    raise ExportError(
        f"Device '{device.name}' offers {capacity:,} B of RAM for the arena; "
        f"no export fits below {MIN_ARENA_RAM:,} B (TFLM's interpreter and "
        "the smallest train step take more). Check the profile's sizes "
        "(they are in bytes, not KB) or choose a larger board.")
  methods = rewrite_lib.list_methods()
  if cfg.method not in methods:
    raise ExportError(f"Unknown method '{cfg.method}'. Supported methods: "
                      f"{', '.join(methods)}.")
  model = cfg.model
  shipped = models_lib.list_pretrained()
  if model is None:
    model = next((m for m in DEFAULT_MODELS if m in shipped), None)
    if model is None:
      model = next(m for m in DEFAULT_MODELS if m in models_lib.list_models())
  elif models_lib.is_model_path(model):
    pass  # A model file: read_model_file names the file in its errors.
  elif model not in shipped and model not in models_lib.list_models():
    raise ExportError(
        f"Unknown model '{model}'. Pretrained backbones: "
        f"{', '.join(shipped) or 'none shipped'}; zoo models (random "
        f"weights): {', '.join(models_lib.list_models())}; or a tf-keras "
        "model file (.keras, .h5, SavedModel directory).")
  if not cfg.dataset.startswith("folder:"):
    datasets = data_lib.list_datasets()
    if cfg.dataset not in datasets:
      raise ExportError(
          f"Unknown dataset '{cfg.dataset}'. Supported: {', '.join(datasets)}"
          ", or folder:/path/to/images (one sub-folder per class).")
  flag_checks.check_numbers(cfg)
  flag_checks.check_sample_storage(cfg, device)
  if cfg.finetune_optimizer not in OPTIMIZERS:
    raise ExportError(f"Unknown --finetune_optimizer "
                      f"'{cfg.finetune_optimizer}'. Supported: "
                      f"{', '.join(OPTIMIZERS)}.")
  if not cfg.name.isidentifier():
    raise ExportError(f"--name '{cfg.name}' must be a C identifier (letters, "
                      "digits, '_').")
  if cfg.memory_budget is not None and cfg.memory_budget < 1:
    raise ExportError(f"--memory_budget must be >= 1 byte, got "
                      f"{cfg.memory_budget}.")
  if cfg.compute_budget is not None and cfg.compute_budget < 1:
    raise ExportError(f"--compute_budget must be >= 1 MAC, got "
                      f"{cfg.compute_budget}.")
  if cfg.method not in SELECTING_METHODS and (cfg.memory_budget
                                              or cfg.compute_budget):
    raise ExportError(
        f"--memory_budget / --compute_budget are for --method="
        f"{', '.join(SELECTING_METHODS)}; --method={cfg.method} takes "
        "neither.")
  if cfg.selection_criterion and cfg.method not in SPARSE_METHODS:
    raise ExportError(f"--selection_criterion is for --method="
                      f"{' or '.join(SPARSE_METHODS)}, not {cfg.method}.")
  if cfg.selection_allocation and cfg.method != "tinytrain":
    raise ExportError(f"--selection_allocation is for --method=tinytrain, "
                      f"not {cfg.method}.")
  if (cfg.selection_allocation
      and cfg.selection_allocation not in sparse_lib.ALLOCATIONS):
    raise ExportError(f"--selection_allocation={cfg.selection_allocation!r} "
                      f"is not one of {', '.join(sparse_lib.ALLOCATIONS)}.")
  flavors, reason = plan_flavors(cfg)
  if cfg.instruction_counts:
    check_instruction_counts(cfg, device)
  # Fail before the heavy work if the output directory cannot be used.
  try:
    atomic.check_replaceable(cfg.out, OUTPUT_MARKER)
  except atomic.OutputExistsError as e:
    raise atomic.OutputExistsError(f"--out: {e}") from None
  flag_checks.check_writable_parent(cfg.out)
  return Plan(device, model, model in shipped, flavors, reason)
