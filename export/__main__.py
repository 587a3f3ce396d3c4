"""python -m export: a Keras backbone -> Arduino library + ESP-IDF component.

A bare ``python -m export --out=DIR`` exports the shipped default backbone
with TinyTL-L+B (tinytl_lb) for Animal-MNIST on an Arduino Nano 33 BLE Sense.
Exits non-zero with a message (and writes nothing) when an input is unknown
or the result does not fit the board. See docs/export.md.
"""
import sys

from absl import app
from absl import flags
from absl import logging

from tflite_tl import pipeline

FLAGS = flags.FLAGS
_D = pipeline.ExportConfig(out="")

flags.DEFINE_string("out", None, "Output directory (created atomically).",
                    required=True)
flags.DEFINE_string("model", None, "Backbone: a shipped pretrained name, a "
                    "zoo model (random weights), or a tf-keras model file "
                    "(.keras, full-model .h5, SavedModel directory). Default: "
                    "the first shipped of "
                    + ", ".join(pipeline.DEFAULT_MODELS) + ".")
flags.DEFINE_string("method", _D.method, "Transfer-learning method.")
flags.DEFINE_string("dataset", _D.dataset, "Target dataset, or folder:PATH.")
flags.DEFINE_string("device", _D.device, "Board profile name.")
flags.DEFINE_multi_string("devices_file", [], "Extra device-profile JSON "
                          "files (same format as tflite_tl/devices/devices.json).")
flags.DEFINE_integer("resolution", None, "Input side in pixels (default: the "
                     "backbone's; a model file is rebuilt at it when fully "
                     "convolutional).")
flags.DEFINE_integer("batch", None, "On-device batch (default: the largest of "
                     "8, 4, 2, 1 that fits the board).")
flags.DEFINE_float("learning_rate", _D.learning_rate, "On-device SGD rate.")
flags.DEFINE_float("momentum", _D.momentum, "On-device SGD momentum.")
flags.DEFINE_float("label_smoothing", _D.label_smoothing, "Label smoothing.")
flags.DEFINE_integer("finetune_epochs", _D.finetune_epochs,
                     "Host fine-tuning epochs before export (0: none).")
flags.DEFINE_float("finetune_learning_rate", _D.finetune_learning_rate,
                   "Host fine-tuning SGD rate (momentum 0.9).")
flags.DEFINE_integer("samples_per_class", _D.samples_per_class,
                     "Cap of training images per class used on the host.")
flags.DEFINE_integer("calibration_images", _D.calibration_images,
                     "Representative images for int8 quantization.")
flags.DEFINE_integer("qat_epochs", _D.qat_epochs, "Quantization-aware "
                     "training epochs (tfmot) before int8 conversion.")
flags.DEFINE_integer("verify_steps", _D.verify_steps, "Train steps compared "
                     "between TF and TFLM.")
flags.DEFINE_integer("verify_images", _D.verify_images, "Test images run "
                     "through the inference models in TFLM.")
flags.DEFINE_float("parity_tolerance", _D.parity_tolerance, "Largest relative "
                   "TF-vs-TFLM error accepted.")
flags.DEFINE_integer("max_samples", _D.max_samples, "Labelled samples the "
                     "board keeps for training.")
flags.DEFINE_float("sram_margin", _D.sram_margin, "Fraction of RAM kept free "
                   "for stack and framework.")
flags.DEFINE_integer("flash_reserve", _D.flash_reserve, "Flash bytes kept for "
                     "the firmware.")
flags.DEFINE_bool("arena_in_external_ram", _D.arena_in_external_ram, "Place "
                  "the arena in PSRAM/SDRAM (boards that have it).")
flags.DEFINE_string("name", _D.name, "Library/component name (C identifier).")
flags.DEFINE_string("arduino_tflm_library", _D.arduino_tflm_library,
                    "Arduino library providing TFLM.")
flags.DEFINE_integer("seed", _D.seed, "Seed of every random choice.")

# What a user can cause (bad flags, missing data, no fit) ends with a message
# and exit status 1, never a traceback.
_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, RuntimeError,
                KeyError)


def main(argv):
  del argv
  cfg = pipeline.ExportConfig(
      out=FLAGS.out, model=FLAGS.model, method=FLAGS.method,
      dataset=FLAGS.dataset, device=FLAGS.device,
      devices_files=tuple(FLAGS.devices_file), resolution=FLAGS.resolution,
      batch=FLAGS.batch, learning_rate=FLAGS.learning_rate,
      momentum=FLAGS.momentum, label_smoothing=FLAGS.label_smoothing,
      finetune_epochs=FLAGS.finetune_epochs,
      finetune_learning_rate=FLAGS.finetune_learning_rate,
      samples_per_class=FLAGS.samples_per_class,
      calibration_images=FLAGS.calibration_images,
      qat_epochs=FLAGS.qat_epochs, verify_steps=FLAGS.verify_steps,
      verify_images=FLAGS.verify_images,
      parity_tolerance=FLAGS.parity_tolerance, max_samples=FLAGS.max_samples,
      sram_margin=FLAGS.sram_margin, flash_reserve=FLAGS.flash_reserve,
      arena_in_external_ram=FLAGS.arena_in_external_ram, name=FLAGS.name,
      arduino_tflm_library=FLAGS.arduino_tflm_library, seed=FLAGS.seed)
  try:
    result = pipeline.run_export(cfg)
  except _USER_ERRORS as e:
    print(f"export failed: {e}", file=sys.stderr)
    return 1
  logging.info("wrote %s", result.out)
  print(f"wrote {result.out} "
        f"(fits {result.report['device']['name']}: "
        f"{result.report['fit']['ram_needed']} of "
        f"{result.report['fit']['ram_available']} B RAM)")
  return 0


if __name__ == "__main__":
  app.run(main)
