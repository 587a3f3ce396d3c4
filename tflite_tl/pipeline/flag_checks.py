"""Range checks of every numeric export setting, one line each.

Each check names the flag, the value given, what is accepted and, where it is
not obvious, why; they run before any heavy work (``config.validate``).
"""
import os
import tempfile

from tflite_tl.firmware import sample_store
from tflite_tl.ranges import FlagError
from tflite_tl.ranges import fraction
from tflite_tl.ranges import integer_in
from tflite_tl.ranges import positive

# Sides above this make even the smallest backbone's activations exceed any
# supported board's memory many times over (and TF's resize of the data
# take minutes); a typo such as --resolution=3200 fails at once.
MAX_RESOLUTION = 1024
MAX_BATCH = 256
MAX_SEED = 2**32 - 1  # numpy's RandomState seeds


def check_numbers(cfg) -> None:
  """Every numeric field of an ``ExportConfig``."""
  if cfg.resolution is not None:
    integer_in("resolution", cfg.resolution, 8, MAX_RESOLUTION,
                     " pixels")
  if cfg.batch is not None:
    integer_in("batch", cfg.batch, 1, MAX_BATCH)
  positive("learning_rate", cfg.learning_rate,
           " (the on-device SGD step, e.g. 0.001)")
  if cfg.learning_rate > 1.0:
    raise FlagError(f"--learning_rate {cfg.learning_rate!r} is above 1: SGD "
                    "diverges to inf/NaN within a few steps; use e.g. 0.001.")
  fraction("momentum", cfg.momentum, " (0: plain SGD)")
  fraction("label_smoothing", cfg.label_smoothing, " (0: none)")
  if cfg.finetune_epochs is not None:
    integer_in("finetune_epochs", cfg.finetune_epochs, 0,
                     note=" (0: no host fine-tuning)")
  if cfg.finetune_learning_rate is not None:
    positive("finetune_learning_rate", cfg.finetune_learning_rate,
             " (or unset: the recipe's)")
    if cfg.finetune_learning_rate > 1.0:
      raise FlagError(f"--finetune_learning_rate "
                      f"{cfg.finetune_learning_rate!r} is above 1: training "
                      "diverges; use e.g. 0.003 (or unset: the recipe's).")
  integer_in("finetune_batch", cfg.finetune_batch, 1)
  if cfg.samples_per_class is not None:
    integer_in("samples_per_class", cfg.samples_per_class, 1,
                     note=" (or unset: the whole dataset)")
  integer_in("calibration_images", cfg.calibration_images, 1,
                   note=" (int8 quantization needs representative images)")
  integer_in("qat_epochs", cfg.qat_epochs, 0, note=" (0: no QAT)")
  integer_in("verify_steps", cfg.verify_steps, 1,
                   note=" (train steps compared between TF and TFLM)")
  integer_in("verify_images", cfg.verify_images, 1,
                   note=" (held-out images run in TFLM)")
  positive("parity_tolerance", cfg.parity_tolerance, " (e.g. 1e-4)")
  if cfg.max_samples is not None:
    integer_in("max_samples", cfg.max_samples, 1,
                     note=" (or unset: as many as fit)")
  integer_in("device_epochs", cfg.device_epochs, 0,
                   note=" (0 skips the on-device check)")
  fraction("sram_margin", cfg.sram_margin,
           " (the fraction of RAM kept free, e.g. 0.1)")
  integer_in("flash_reserve", cfg.flash_reserve, 0, note=" bytes")
  integer_in("seed", cfg.seed, 0, MAX_SEED)


def check_sample_storage(cfg, device) -> None:
  """--sample_storage: one of auto, ram, flash; flash needs a board with a
  storage backend."""
  if cfg.sample_storage not in sample_store.STORAGES:
    raise FlagError(f"--sample_storage={cfg.sample_storage!r} is not one of "
                    f"{', '.join(sample_store.STORAGES)}.")
  if (cfg.sample_storage == "flash" and
      not sample_store.board_has_storage(device)):
    raise FlagError(
        f"--sample_storage=flash: {device.name} ({device.display_name}) has "
        "no storage backend for samples (Arduino mbed boards and ESP32s "
        "have one, csrc/tl_storage.h); use --sample_storage=ram or auto.")


def check_writable_parent(out: str) -> None:
  """Raises FlagError unless a directory can be created beside ``out`` (the
  export is written there first, then renamed into place). Creates nothing
  that stays: missing parents are made only when the export is written."""
  existing = os.path.dirname(os.path.abspath(out))
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise FlagError(f"--out={out}: {existing} is a file, not a directory; "
                    "choose an output path inside a directory.")
  try:
    tempfile.TemporaryDirectory(dir=existing).cleanup()
  except OSError as e:
    raise FlagError(f"--out={out}: cannot write in {existing} "
                    f"({e.strerror or e}); choose a writable directory."
                    ) from None
