"""python -m export.verify: TF vs TFLM parity of a lowered training step.

Builds a zoo model, applies a transfer-learning method, lowers its train step
to a TFLM-builtin .tflite, runs N steps in TF and in the real TFLM interpreter
(a subprocess) on the same seeded random data and prints a report. The model
starts from the shipped pretrained backbone of the same name when one matches
(--weights=auto), else from seeded random weights. E.g.

  python -m export.verify --model=mobilenet_v2 --width_multiplier=0.35 \\
      --method=tinytl_lb --resolution=32 --batch=2 --steps=20 --format=json

Exit code 1 when parity fails or a non-builtin op remains. TensorFlow's and
the converter's log go to a temporary file (shown with -v / --verbose or
absl's --verbosity), so stdout holds the report alone.
"""
import json
import sys

from tflite_tl import console

if __name__ == "__main__" and not console.verbose_requested(sys.argv):
  # Before TensorFlow is imported: it writes to the process's stderr at
  # import time, beyond the reach of any Python-level setting.
  QUIET = console.QuietRun().start()
else:
  QUIET = console.QuietRun()  # inactive: everything goes where it goes

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from tflite_tl import sparse  # noqa: E402
from tflite_tl.verify import check as verify_lib  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

_D = verify_lib.VerifyConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("model", _D.model, "Zoo model name (tflite_tl.models), "
                    "or a tf-keras model file (.keras, .h5, SavedModel "
                    "directory), rebuilt at --resolution when fully "
                    "convolutional.")
flags.DEFINE_string("method", _D.method, "Transfer-learning method "
                    "(tflite_tl.rewrite.list_methods()).")
flags.DEFINE_integer("resolution", _D.resolution, "Input side in pixels.")
flags.DEFINE_integer("batch", _D.batch, "Batch size of the train step.")
flags.DEFINE_integer("steps", _D.steps, "Training steps to compare.")
flags.DEFINE_float("width_multiplier", None, "Width multiplier (models that "
                   "take one, e.g. mobilenet_v2).")
flags.DEFINE_integer("channels", _D.channels, "Input channels.")
flags.DEFINE_integer("num_classes", _D.num_classes, "Classes of the new head.")
flags.DEFINE_integer("seed", _D.seed, "Seed of the model's random weights "
                     "and of the random data.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "SGD learning rate.")
flags.DEFINE_float("tolerance", _D.tolerance, "Max relative error allowed "
                   "on losses and parameters.")
flags.DEFINE_enum("weights", _D.weights, list(verify_lib.WEIGHT_CHOICES),
                  "Starting weights: 'pretrained' = the shipped backbone of "
                  "the same name (rebuilt at --resolution), 'random' = the "
                  "zoo's seeded initialisation, 'auto' = pretrained when a "
                  "shipped backbone matches the model, width and channels.")
flags.DEFINE_enum("kernels", _D.kernels, ["builtin", "tl"],
                  "Lowering flavor: 'builtin' (TFLM builtin ops through the "
                  "TF converter) or 'tl' (the TL_* training kernels; needs "
                  "TFLM_ROOT).")
flags.DEFINE_enum("precision", _D.precision, ["float", "int8"],
                  "Precision: int8 with --kernels=tl is an int8 forward pass; "
                  "with --kernels=builtin, int8 frozen weights (DEQUANTIZE) "
                  "and a float32 step.")
flags.DEFINE_bool("qas", _D.qas, "int8: quantization-aware scaling of the "
                  "updates (--noqas: plain SGD on the integer copies).")
flags.DEFINE_integer("int8_chunk_elements", _D.int8_chunk_elements,
                     "--kernels=builtin --precision=int8: FULLY_CONNECTED "
                     "weights above this many elements are rebuilt from int8 "
                     "in row blocks of at most this size (0: whole).")
flags.DEFINE_integer("memory_budget", None, "tinytrain: bytes of training "
                     "state beyond inference to select under (default: the "
                     "method's).")
flags.DEFINE_integer("compute_budget", None, "tinytrain: backward MACs per "
                     "step to select under.")
flags.DEFINE_string("selection_criterion", None, "tinytrain / sparse_update: "
                    "channel criterion (fisher, l2, random).")
flags.DEFINE_enum("selection_allocation", None, list(sparse.ALLOCATIONS),
                  "tinytrain: how the budget is spent (greedy, marginal).")
flags.DEFINE_enum("format", "json", ["json", "text"], "Output format.")
flags.DEFINE_bool("verbose", False, "Show TensorFlow's and the converter's "
                  "log (-v).")


def main(argv):
  del argv
  if QUIET.active:
    console.show_python_warnings_on(QUIET.stderr)
  elif not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.INFO if FLAGS.verbose else logging.WARNING)
  try:
    report = _verify()
  except console.USER_ERRORS as e:
    # A bad model, file or flag, or a TFLM failure: one line, no traceback
    # (-v or $TFLITE_TL_TRACEBACK shows it).
    QUIET.stop()
    console.report_error("verify", e, sys.stderr, FLAGS.verbose)
    sys.exit(1)
  except KeyboardInterrupt:
    QUIET.stop()
    if console.traceback_requested(FLAGS.verbose):
      raise
    print("verify interrupted.", file=sys.stderr)
    sys.exit(130)
  except BaseException:
    log = QUIET.stop(keep_log=True)
    if log:
      print(f"(TensorFlow's log of this run: {log})", file=sys.stderr)
    raise
  QUIET.stop()
  if FLAGS.format == "json":
    print(json.dumps(report, sort_keys=True))
  else:
    print(verify_lib.format_text(report))
  sys.exit(0 if report["passed"] else 1)


def _verify():
  return verify_lib.verify(verify_lib.VerifyConfig(
      model=FLAGS.model, method=FLAGS.method, resolution=FLAGS.resolution,
      batch=FLAGS.batch, steps=FLAGS.steps,
      width_multiplier=FLAGS.width_multiplier, channels=FLAGS.channels,
      num_classes=FLAGS.num_classes, seed=FLAGS.seed,
      learning_rate=FLAGS.learning_rate, tolerance=FLAGS.tolerance,
      weights=FLAGS.weights, kernels=FLAGS.kernels,
      precision=FLAGS.precision, qas=FLAGS.qas,
      int8_chunk_elements=FLAGS.int8_chunk_elements or None,
      method_options=_method_options()))


def _method_options():
  return {k: v for k, v in (("memory_budget", FLAGS.memory_budget),
                            ("compute_budget", FLAGS.compute_budget),
                            ("criterion", FLAGS.selection_criterion),
                            ("allocation", FLAGS.selection_allocation))
          if v is not None}


def _parse_flags(argv):
  if console.help_requested(argv):
    # The quiet run holds stdout; help must reach the terminal.
    QUIET.stop()
    print(__doc__ + "\nFlags:\n" + FLAGS.module_help(sys.modules[__name__]))
    sys.exit(0)
  try:
    return FLAGS(console.expand_short_verbose(argv))
  except flags.Error as e:
    QUIET.stop()
    print(f"export.verify: {console.one_line(e)}. Try --helpfull.",
          file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
