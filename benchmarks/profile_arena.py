"""Measured train-step and inference arenas per method against board SRAM.

  python -m benchmarks.profile_arena --model=tiny --methods=ft_last,tinytl_lb \
      --devices=nano33ble,esp32 --resolution=32 --format=markdown

Prints the table (json or markdown) and writes a PNG chart (--png): stacked
arena breakdown per method, each board's usable SRAM as a line.
"""
import sys

from absl import app
from absl import flags

from tflite_tl import console
from tflite_tl import devices as devices_lib
from benchmarks import arena_profile

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "tiny", "Backbone (shipped pretrained or zoo).")
flags.DEFINE_list("methods", ["ft_last", "tinytl_b", "tinytl_lb", "ft_full"],
                  "Methods to profile.")
flags.DEFINE_list("devices", ["nano33ble", "pico", "esp32", "stm32h743"],
                  "Boards whose usable SRAM is compared.")
flags.DEFINE_multi_string("devices_file", [], "Extra device-profile JSON.")
flags.DEFINE_integer("resolution", None, "Input side (default: backbone's).")
flags.DEFINE_integer("batch", 1, "Train-step batch size.")
flags.DEFINE_integer("num_classes", 10, "Classes of the new head.")
flags.DEFINE_enum("format", "markdown", ["json", "markdown"], "Output format.")
flags.DEFINE_string("png", "arena_profile.png", "Chart path.")
flags.DEFINE_integer("seed", 0, "Seed of the new head.")


def main(argv):
  del argv
  try:
    devices = {n: devices_lib.get_device(n, FLAGS.devices_file)
               for n in FLAGS.devices}
    profile = arena_profile.profile_methods(
        FLAGS.model, FLAGS.methods, resolution=FLAGS.resolution,
        batch_size=FLAGS.batch, num_classes=FLAGS.num_classes,
        seed=FLAGS.seed)
  except console.USER_ERRORS as e:
    console.report_error("profile_arena", e, sys.stderr)
    return 1
  fmt = (arena_profile.to_json if FLAGS.format == "json"
         else arena_profile.to_markdown)
  print(fmt(profile, devices), end="")
  arena_profile.plot(FLAGS.png, profile, devices)
  return 0


if __name__ == "__main__":
  app.run(main)
