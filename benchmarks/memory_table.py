"""Reproduces the memory column of TinyTL's Table 2 (modelled, analytic).

  python -m benchmarks.memory_table --model=proxyless_mobile --resolution=224 \
      --batch=8 --format=json
  python -m benchmarks.memory_table --format=markdown
  python -m benchmarks.memory_table --breakdown=tinytl_lb   # per layer

Builds the zoo model, applies each transfer-learning method and prints the
modelled training memory beside the paper's figures.
"""
import sys

from absl import app
from absl import flags

from tflite_tl import console
from tflite_tl import models
from tflite_tl.memory import table

_MODEL = flags.DEFINE_string("model", "proxyless_mobile", "Zoo model name.")
_RESOLUTION = flags.DEFINE_integer("resolution", 224, "Input resolution.")
_BATCH = flags.DEFINE_integer("batch", 8, "Training batch size.")
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", table.TINYTL_NUM_CLASSES,
    "Classes of the new classifier (TinyTL profiled with Flowers102's 102).")
_METHODS = flags.DEFINE_list("methods", list(table.TABLE2_ORDER),
                             "Methods to evaluate.")
_NORM = flags.DEFINE_enum("norm", "group", ["group", "batch"],
                          "Norm inside lite residual branches.")
_FORMAT = flags.DEFINE_enum("format", "json", ["json", "markdown"],
                            "Output format.")
_BREAKDOWN = flags.DEFINE_string(
    "breakdown", None,
    "Instead of the table, print the per-layer breakdown of this method.")


def main(argv):
  del argv
  try:
    _print_table()
  except console.USER_ERRORS as e:  # a bad flag: one line, no traceback
    console.report_error("memory_table", e, sys.stderr)
    return 1
  return 0


def _print_table():
  model = models.get_model(_MODEL.value, resolution=_RESOLUTION.value)
  options = table.lite_norm_options(_NORM.value)
  if _BREAKDOWN.value:
    _, memory_report = table.method_report(
        model, _BREAKDOWN.value, _BATCH.value, _NUM_CLASSES.value,
        **options.get(_BREAKDOWN.value, {}))
    print(memory_report.format_table())
    return
  result = table.method_memory_table(
      model, _BATCH.value, _NUM_CLASSES.value, _METHODS.value,
      method_options=options)
  print(table.to_json(result) if _FORMAT.value == "json"
        else table.to_markdown(result))


if __name__ == "__main__":
  app.run(main)
