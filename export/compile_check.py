"""python -m export.compile_check: compile an export against TFLM source.

  TFLM_ROOT=/path/to/tflite-micro python -m export.compile_check \\
      --out=out/nano33ble --targets=host,cortex-m4f

Compiles every C/C++ source of the export's Arduino library and ESP-IDF
component with TFLM's own flags (TFLM's Makefile, built and cached by
`scripts/tflm_build.sh`) plus -Wall -Wextra -Werror. Exit code 1 on any
error or warning, with the compiler's output.
"""
import sys

from absl import app
from absl import flags

from tflite_tl.firmware import compile_check
from tflite_tl.tflm import tflm_library

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Export directory (python -m export --out).",
                    required=True)
flags.DEFINE_list("targets", list(tflm_library.TARGETS), "TFLM targets.")


def main(argv):
  del argv
  try:
    for target in FLAGS.targets:
      report = compile_check.compile_export(FLAGS.out, target)
      print(compile_check.describe(report))
  except (tflm_library.TflmBuildError, FileNotFoundError) as e:
    print(f"compile_check failed: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  app.run(main)
