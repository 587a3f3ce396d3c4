"""Measured train-step and inference arenas per method against board SRAM.

  python -m benchmarks.profile_arena --model=tiny --methods=ft_last,tinytl_lb \
      --devices=nano33ble,esp32 --resolution=32 --format=markdown

  python -m benchmarks.profile_arena --model=mobilenet_v2 --resolution=64 \
      --methods=tinytl_b --kernels=tl --precision=int8 --int8_inference
  python -m benchmarks.profile_arena --model=tiny --kernels=tl \
      --compare_kernels=builtin     # builtin against tl, per method

Prints the table (json or markdown) and writes a PNG chart (--png): stacked
arena breakdown per method, each board's usable SRAM as a line. The lowering
is --kernels (builtin, or tl: the TL_* kernels, needs TFLM_ROOT) and
--precision (float, or int8: with --kernels=tl an int8 forward pass with
--qas/--noqas, with --kernels=builtin int8 frozen weights,
--int8_chunk_elements); --int8_inference also measures the int8 inference
model (infer.tflite) and holds the train step against it; --compare_kernels profiles the other flavor too and prints both.
"""
import json
import sys

from absl import app
from absl import flags

from tflite_tl import console
from tflite_tl import devices as devices_lib
from tflite_tl import lower
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
flags.DEFINE_integer("seed", 0, "Seed of the new head and of the int8 "
                     "calibration images.")
flags.DEFINE_enum("kernels", "builtin", ["builtin", "tl"], "Kernel flavor of "
                  "the lowering: TFLM builtins only, or the TL_* training "
                  "kernels (needs TFLM_ROOT).")
flags.DEFINE_enum("precision", "float", ["float", "int8"], "Precision: "
                  "int8 with --kernels=tl is an int8 forward pass; with "
                  "--kernels=builtin, int8 frozen weights (DEQUANTIZE) and a "
                  "float32 step.")
flags.DEFINE_bool("qas", True, "int8: quantization-aware scaling of the "
                  "updates (--noqas: plain SGD on the integer copies).")
flags.DEFINE_integer("int8_chunk_elements", lower.INT8_CHUNK_ELEMENTS,
                     "--kernels=builtin --precision=int8: FULLY_CONNECTED "
                     "weights above this many elements are rebuilt from int8 "
                     "in row blocks of at most this size (0: whole).")
flags.DEFINE_bool("int8_inference", False, "Also convert and measure the "
                  "int8 inference model (infer.tflite) and compare the "
                  "train step's arena and flash with it.")
flags.DEFINE_enum("compare_kernels", None, ["builtin", "tl"], "Also profile "
                  "with this kernel flavor (float) and print the two side "
                  "by side (operators, head, tail, total).")


def main(argv):
  del argv
  try:
    devices = {n: devices_lib.get_device(n, FLAGS.devices_file)
               for n in FLAGS.devices}
    common = dict(resolution=FLAGS.resolution, batch_size=FLAGS.batch,
                  num_classes=FLAGS.num_classes, seed=FLAGS.seed)
    profile = arena_profile.profile_methods(
        FLAGS.model, FLAGS.methods, kernels=FLAGS.kernels,
        precision=FLAGS.precision, qas=FLAGS.qas,
        int8_inference=FLAGS.int8_inference,
        int8_chunk_elements=FLAGS.int8_chunk_elements or None, **common)
    other = None
    if FLAGS.compare_kernels:
      other = arena_profile.profile_methods(
          FLAGS.model, FLAGS.methods, kernels=FLAGS.compare_kernels,
          **common)
  except console.USER_ERRORS as e:
    console.report_error("profile_arena", e, sys.stderr)
    return 1
  if FLAGS.format == "json":
    docs = [json.loads(arena_profile.to_json(p, devices))
            for p in (profile, other) if p is not None]
    # One profile: its object; with --compare_kernels: both, in a list.
    print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2,
                     sort_keys=True))
  else:
    print(arena_profile.to_markdown(profile, devices), end="")
    if other is not None:
      print()
      print(arena_profile.compare_markdown(other, profile), end="")
  arena_profile.plot(FLAGS.png, profile, devices)
  return 0


if __name__ == "__main__":
  app.run(main)
