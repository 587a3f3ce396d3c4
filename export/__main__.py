"""python -m export: a Keras backbone -> Arduino library + ESP-IDF component.

A bare ``python -m export --out=DIR`` exports the shipped default backbone
with TinyTL-L+B (tinytl_lb) for Animal-MNIST on an Arduino Nano 33 BLE Sense.
Exits non-zero with a message (and writes nothing) when an input is unknown
or the result does not fit the board. See docs/export.md.
"""
import sys

from tflite_tl import console

if __name__ == "__main__" and not console.verbose_requested(sys.argv):
  # Before TensorFlow is imported: it writes CUDA probes to the process's
  # stderr at import time, beyond the reach of any Python-level setting.
  QUIET = console.QuietRun().start()
else:
  QUIET = console.QuietRun()  # inactive: everything goes where it goes

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from tflite_tl import pipeline  # noqa: E402  (imports TensorFlow)
from tflite_tl import rewrite  # noqa: E402
from tflite_tl import sparse  # noqa: E402
from tflite_tl.pipeline import progress  # noqa: E402
from tflite_tl.pipeline.progress import Progress  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
_D = pipeline.ExportConfig(out="")

# model
flags.DEFINE_string("model", None, "Backbone: a shipped pretrained name, a "
                    "zoo model (random weights), or a tf-keras model file "
                    "(.keras, full-model .h5, SavedModel directory). Default: "
                    "the first shipped of "
                    + ", ".join(pipeline.DEFAULT_MODELS) + ".")
flags.DEFINE_integer("resolution", None, "Input side in pixels (default: the "
                     "backbone's; a model file is rebuilt at it when fully "
                     "convolutional).")
# method and training
flags.DEFINE_string("method", _D.method, "Transfer-learning method: "
                    + ", ".join(rewrite.list_methods()) + ".")
flags.DEFINE_float("learning_rate", _D.learning_rate, "On-device SGD rate.")
flags.DEFINE_float("momentum", _D.momentum, "On-device SGD momentum.")
flags.DEFINE_float("label_smoothing", _D.label_smoothing, "Label smoothing.")
flags.DEFINE_integer("finetune_epochs", None, "Host fine-tuning epochs before "
                     "export (0: none; default: the few-shot recipe's, about "
                     "3,000 steps within 3..30 epochs).")
flags.DEFINE_float("finetune_learning_rate", None, "Host fine-tuning rate "
                   "(default: the recipe's, 3e-3; 1e-3 for ft_full, 1e-2 for "
                   "ft_last).")
flags.DEFINE_enum("finetune_optimizer", _D.finetune_optimizer,
                  ["adam", "sgd"], "Host fine-tuning optimizer (sgd: momentum "
                  "0.9).")
flags.DEFINE_integer("finetune_batch", _D.finetune_batch,
                     "Host fine-tuning batch.")
flags.DEFINE_integer("qat_epochs", _D.qat_epochs, "Quantization-aware "
                     "training epochs (tfmot) before int8 conversion.")
flags.DEFINE_integer("seed", _D.seed, "Seed of every random choice.")
# lowering
flags.DEFINE_enum("kernels", _D.kernels, list(pipeline.KERNEL_CHOICES),
                  "Train-step ops: 'tl' = our TL_* training kernels in TFLM "
                  "(needs $TFLM_ROOT), 'builtin' = TFLM builtins only, 'auto' "
                  "= tl when $TFLM_ROOT is set and it fits and verifies, else "
                  "builtin.")
flags.DEFINE_enum("precision", _D.precision, list(pipeline.PRECISION_CHOICES),
                  "Forward pass of the train step: 'int8' (int8 weights and "
                  "activations, float backward; tl kernels; with "
                  "--kernels=builtin: int8 frozen weights rebuilt by "
                  "DEQUANTIZE, float32 step), 'float', or 'auto' = int8 "
                  "where it fits and verifies.")
flags.DEFINE_bool("qas", _D.qas, "int8: quantization-aware scaling of the "
                  "updates (--noqas: plain SGD of the int8 copies, an "
                  "ablation).")
flags.DEFINE_integer("memory_budget", None, "tinytrain: bytes of training "
                     "state beyond inference (default: what the board's RAM "
                     "leaves, measured).")
flags.DEFINE_integer("compute_budget", None, "tinytrain: backward MACs per "
                     "training step (default: unbounded).")
flags.DEFINE_string("selection_criterion", None, "tinytrain / sparse_update: "
                    "channel criterion (fisher, l2, random).")
flags.DEFINE_enum("selection_allocation", None, list(sparse.ALLOCATIONS),
                  "tinytrain: how the budget is spent: 'greedy' (TinyTrain: "
                  "layers in score order, then widened; the default) or "
                  "'marginal' (the move adding the most Fisher potential "
                  "per unit of budget; docs/tinytrain.md).")
# data
flags.DEFINE_string("dataset", _D.dataset, "Target dataset, or folder:PATH "
                    "(one sub-folder of images per class).")
flags.DEFINE_integer("samples_per_class", None, "Cap of images per class in "
                     "each split (default: the whole dataset).")
flags.DEFINE_integer("calibration_images", _D.calibration_images,
                     "Representative images for int8 quantization.")
# device
flags.DEFINE_string("device", _D.device, "Board profile name.")
flags.DEFINE_multi_string("devices_file", [], "Extra device-profile JSON "
                          "files (same format as tflite_tl/devices/devices.json).")
flags.DEFINE_integer("batch", None, "On-device batch (default: the largest of "
                     "1, 2, 4, 8 that fits the board).")
flags.DEFINE_integer("max_samples", None, "Labelled samples the board "
                     "keeps for training (default: as many as the RAM left "
                     "after the arena holds, the margin kept free, up to "
                     f"{pipeline.MAX_AUTO_SAMPLES}).")
flags.DEFINE_enum("sample_storage", _D.sample_storage,
                  ["auto", "ram", "flash"], "Where the board keeps its "
                  "labelled samples: ram, flash (the storage region's sample "
                  "area; RAM holds one batch) or auto (RAM when the whole "
                  "sample buffer fits, else flash on a board with storage).")
flags.DEFINE_float("sram_margin", _D.sram_margin, "Fraction of RAM kept free "
                   "for stack and framework.")
flags.DEFINE_integer("flash_reserve", _D.flash_reserve, "Flash bytes kept for "
                     "the firmware.")
flags.DEFINE_bool("arena_in_external_ram", _D.arena_in_external_ram, "Place "
                  "the arena in PSRAM/SDRAM (boards that have it).")
# output
flags.DEFINE_string("out", None, "Output directory (created atomically).")
flags.DEFINE_string("name", _D.name, "Library/component name (C identifier).")
flags.DEFINE_string("arduino_tflm_library", _D.arduino_tflm_library,
                    "Arduino library providing TFLM.")
flags.DEFINE_bool("verbose", False, "Show TensorFlow's, the converter's and "
                  "absl's log instead of the stage lines alone (-v; absl's "
                  "--verbosity=N works too).")
# verification
flags.DEFINE_integer("verify_steps", _D.verify_steps, "Train steps compared "
                     "between TF and TFLM.")
flags.DEFINE_integer("verify_images", _D.verify_images, "Test images run "
                     "through the inference models in TFLM.")
flags.DEFINE_float("parity_tolerance", _D.parity_tolerance, "Largest relative "
                   "TF-vs-TFLM error accepted.")
flags.DEFINE_integer("device_epochs", _D.device_epochs, "Epochs of the "
                     "on-device check (train.tflite trains in TFLM on a full "
                     "sample buffer) and of the app's bare 'T' command; 0 "
                     "skips the check.")
flags.DEFINE_bool("instruction_counts", _D.instruction_counts, "Build the "
                  "firmware for Cortex-M4F, link it with the board's memory "
                  "(measuring its globals for the fit check) and run it in "
                  "QEMU: instructions per train step and per prediction in "
                  "REPORT.md. Needs $TFLM_ROOT, arm-none-eabi-gcc and "
                  "qemu-system-arm; the first run builds TFLM for Cortex-M4F "
                  "(minutes, then cached).")

HELP_GROUPS = (
    ("Model", ("model", "resolution")),
    ("Method and training", ("method", "learning_rate", "momentum",
                             "label_smoothing", "finetune_epochs",
                             "finetune_learning_rate", "finetune_optimizer",
                             "finetune_batch", "qat_epochs", "seed")),
    ("Lowering", ("kernels", "precision", "qas")),
    ("TinyTrain and sparse update", ("memory_budget", "compute_budget",
                                     "selection_criterion",
                                     "selection_allocation")),
    ("Data", ("dataset", "samples_per_class", "calibration_images")),
    ("Device", ("device", "devices_file", "batch", "max_samples",
                "sample_storage", "sram_margin", "flash_reserve", "arena_in_external_ram")),
    ("Output", ("out", "name", "arduino_tflm_library", "verbose")),
    ("Verification", ("verify_steps", "verify_images", "parity_tolerance",
                      "device_epochs", "instruction_counts")),
)
USAGE = """\
python -m export --out=DIR [flags]

Rewrites a backbone for on-device transfer learning, fine-tunes it on the
host, lowers its training step to TFLite-Micro (our TL_* training kernels and
an int8 forward when $TFLM_ROOT is set, else builtins), checks it in the
real TFLM interpreter (also training on the device's own step) and writes an
Arduino library and an ESP-IDF component, if it fits the board. Prints one
line per stage; -v shows TensorFlow's log too."""
EXAMPLES = (
    "python -m export --out=out/nano33ble",
    "python -m export --out=out/esp32 --device=esp32",
    "python -m export --out=out/mine --dataset=folder:$HOME/photos "
    "--samples_per_class=10",
    "python -m export --out=out/mcunet --model=mcunet --method=tinytl_b "
    "--device=esp32s3_psram --arena_in_external_ram",
    "python -m export --out=out/tt --method=tinytrain --device=nano33ble",
    "python -m export --out=out/f --kernels=builtin --precision=float",
    "python -m export --out=out/n --instruction_counts   # QEMU counts",
    "python -m export --out=out/x -v          # with TensorFlow's log",
)

# What a user can cause (bad flags, missing data, no fit) ends with one line
# and exit status 1, never a traceback (-v or $TFLITE_TL_TRACEBACK shows it).
_USER_ERRORS = console.USER_ERRORS
# Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
_INTERRUPTED = 130


def parse_flags(argv):
  """absl parsing, plus grouped --help and a bare -v for --verbose."""
  if console.help_requested(argv):
    QUIET.stop()
    print(console.grouped_help(USAGE, HELP_GROUPS, EXAMPLES, FLAGS), end="")
    sys.exit(0)
  try:
    return FLAGS(console.expand_short_verbose(argv))
  except flags.Error as e:
    QUIET.stop()
    print(f"export: {console.one_line(e)}. Try --help.", file=sys.stderr)
    sys.exit(1)


def config_from_flags() -> pipeline.ExportConfig:
  return pipeline.ExportConfig(
      out=FLAGS.out, model=FLAGS.model, method=FLAGS.method,
      dataset=FLAGS.dataset, device=FLAGS.device,
      devices_files=tuple(FLAGS.devices_file), resolution=FLAGS.resolution,
      batch=FLAGS.batch, learning_rate=FLAGS.learning_rate,
      momentum=FLAGS.momentum, label_smoothing=FLAGS.label_smoothing,
      finetune_epochs=FLAGS.finetune_epochs,
      finetune_learning_rate=FLAGS.finetune_learning_rate,
      finetune_optimizer=FLAGS.finetune_optimizer,
      finetune_batch=FLAGS.finetune_batch,
      samples_per_class=FLAGS.samples_per_class,
      calibration_images=FLAGS.calibration_images,
      qat_epochs=FLAGS.qat_epochs, verify_steps=FLAGS.verify_steps,
      verify_images=FLAGS.verify_images,
      parity_tolerance=FLAGS.parity_tolerance, max_samples=FLAGS.max_samples,
      device_epochs=FLAGS.device_epochs, sram_margin=FLAGS.sram_margin,
      flash_reserve=FLAGS.flash_reserve,
      arena_in_external_ram=FLAGS.arena_in_external_ram,
      sample_storage=FLAGS.sample_storage, name=FLAGS.name,
      arduino_tflm_library=FLAGS.arduino_tflm_library, seed=FLAGS.seed,
      kernels=FLAGS.kernels, precision=FLAGS.precision, qas=FLAGS.qas,
      memory_budget=FLAGS.memory_budget, compute_budget=FLAGS.compute_budget,
      selection_criterion=FLAGS.selection_criterion,
      selection_allocation=FLAGS.selection_allocation,
      instruction_counts=FLAGS.instruction_counts)


def main(argv):
  if len(argv) > 1:
    QUIET.stop()
    print(f"export: unexpected arguments {argv[1:]}; flags are --name=value. "
          "Try --help.", file=sys.stderr)
    return 1
  if FLAGS.out is None:
    QUIET.stop()
    print("export: --out=DIR is required (the output directory). Try --help.",
          file=sys.stderr)
    return 1
  if QUIET.active:
    console.show_python_warnings_on(QUIET.stderr)
  elif FLAGS.verbose and not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.INFO)
  try:
    result = pipeline.run_export(config_from_flags(), Progress(
        QUIET.stderr, progress.STAGES_WITH_FIRMWARE
        if FLAGS.instruction_counts else progress.STAGES))
  except _USER_ERRORS as e:
    QUIET.stop()
    console.report_error("export", e, sys.stderr, FLAGS.verbose)
    return 1
  except KeyboardInterrupt as e:
    # The output is written atomically: an interrupted export left nothing.
    QUIET.stop()
    if console.traceback_requested(FLAGS.verbose):
      raise
    print(f"export interrupted: nothing was written; {FLAGS.out} is as it "
          "was. Run the same command again to export.", file=sys.stderr)
    return _INTERRUPTED
  except BaseException:
    # A bug: the traceback must reach the terminal, not the log.
    log = QUIET.stop(keep_log=True)
    if log:
      print(f"(TensorFlow's log of this run: {log})", file=sys.stderr)
    raise
  QUIET.stop()
  fit = result.report["fit"]
  print(f"wrote {result.out} (fits {result.report['device']['name']}: "
        f"{fit['ram_needed']} of {fit['ram_available']} B RAM)")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
