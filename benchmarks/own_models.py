"""Own models: train-step parity and arena of keras.applications networks
and a plain Sequential CNN, loaded from model files as a user's would be.

  python -m benchmarks.own_models --models_dir=out/own_models \\
      --reports_dir=benchmarks/results/own_models

For each model this writes a tf-keras model file (once; seeded random
weights, BatchNorm statistics calibrated on seeded random images so that the
network has a trained-like scale, see tflite_tl.models.calibrate), then runs
`python -m export.verify --model=FILE --method=M --resolution=R` per method
(a separate process each, its JSON report kept in --reports_dir; a re-run
reuses them) and prints one markdown table. Parity verdicts are those of
export.verify (20 steps TF vs TFLM); arenas are measured (TFLM recording
allocator); the analytic column is modelled (tflite_tl.memory). Nothing is
downloaded: keras.applications builds with weights=None.
"""
import os

from absl import app
from absl import flags

from benchmarks.own_model_files import MODELS
from benchmarks.own_model_files import table
from benchmarks.own_model_files import write_model
from benchmarks.parity_table import run_report

METHODS = ["ft_last", "tinytl_b", "tinytl_l", "tinytl_lb", "ft_norm_last",
           "ft_full"]

_MODELS = flags.DEFINE_list("models", list(MODELS), "Models, one table block "
                            "each: " + ", ".join(MODELS) + ".")
_METHODS = flags.DEFINE_list("methods", METHODS, "Methods, one row each.")
_BATCH = flags.DEFINE_integer("batch", 2, "Batch size of the train step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Steps compared per run.")
_MODELS_DIR = flags.DEFINE_string("models_dir", "out/own_models",
                                  "Where the model files are written.")
_REPORTS_DIR = flags.DEFINE_string(
    "reports_dir", "benchmarks/results/own_models",
    "Where each run's JSON report is kept.")


def main(argv):
  del argv
  rows = []
  for name in _MODELS.value:
    if name not in MODELS:
      raise app.UsageError(f"Unknown model {name!r}; known: "
                           f"{', '.join(MODELS)}.")
    path = write_model(name, _MODELS_DIR.value)
    resolution = MODELS[name].resolution
    for method in _METHODS.value:
      args = [f"--model={path}", f"--method={method}",
              f"--resolution={resolution}", f"--batch={_BATCH.value}",
              f"--steps={_STEPS.value}"]
      report = os.path.join(_REPORTS_DIR.value,
                            f"{name}_{method}_{resolution}px.json")
      rows.append(run_report(report, args, allow_failure=True))
  print(table(rows))


if __name__ == "__main__":
  app.run(main)
