"""python -m export.verify: TF vs TFLM parity of a lowered training step.

Builds a zoo model, applies a transfer-learning method, lowers its train step
to a TFLM-builtin .tflite, runs N steps in TF and in the real TFLM interpreter
(a subprocess) on the same seeded random data and prints a report. The model
starts from the shipped pretrained backbone of the same name when one matches
(--weights=auto), else from seeded random weights. E.g.

  python -m export.verify --model=mobilenet_v2 --width_multiplier=0.35 \\
      --method=tinytl_lb --resolution=32 --batch=2 --steps=20 --format=json

Exit code 1 when parity fails or a non-builtin op remains.
"""
import json
import sys

from absl import app
from absl import flags
from absl import logging

from tflite_tl.lower import verify as verify_lib

_D = verify_lib.VerifyConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("model", _D.model, "Zoo model name (tflite_tl.models).")
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
flags.DEFINE_integer("memory_budget", None, "tinytrain: bytes of training "
                     "state beyond inference to select under (default: the "
                     "method's).")
flags.DEFINE_integer("compute_budget", None, "tinytrain: backward MACs per "
                     "step to select under.")
flags.DEFINE_string("selection_criterion", None, "tinytrain / sparse_update: "
                    "channel criterion (fisher, l2, random).")
flags.DEFINE_enum("format", "json", ["json", "text"], "Output format.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # keep stdout/stderr to the report
  options = {k: v for k, v in (("memory_budget", FLAGS.memory_budget),
                               ("compute_budget", FLAGS.compute_budget),
                               ("criterion", FLAGS.selection_criterion))
             if v is not None}
  report = verify_lib.verify(verify_lib.VerifyConfig(
      model=FLAGS.model, method=FLAGS.method, resolution=FLAGS.resolution,
      batch=FLAGS.batch, steps=FLAGS.steps,
      width_multiplier=FLAGS.width_multiplier, channels=FLAGS.channels,
      num_classes=FLAGS.num_classes, seed=FLAGS.seed,
      learning_rate=FLAGS.learning_rate, tolerance=FLAGS.tolerance,
      weights=FLAGS.weights, method_options=options or None))
  if FLAGS.format == "json":
    print(json.dumps(report, sort_keys=True))
  else:
    print(verify_lib.format_text(report))
  sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
  app.run(main)
