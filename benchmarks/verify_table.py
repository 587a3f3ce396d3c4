"""Train-step parity and arena per method: runs `python -m export.verify`
for each method and resolution and prints the markdown table of
BENCHMARKS.md ("Train-step arena per method").

  python -m benchmarks.verify_table --model=mobilenet_v2 \\
      --width_multiplier=0.35 --resolutions=32,64 --reports_dir=out/verify
  python -m benchmarks.verify_table --model=tiny --resolutions=32

Each run is a separate `export.verify` process (so a TFLM crash stays an
error of that row) whose JSON report is kept in --reports_dir; a re-run
reuses the reports already there, so an interrupted table resumes. Arena
figures are measured (TFLM recording allocator), the analytic column is
modelled (tflite_tl.memory).
"""
from absl import app
from absl import flags

from benchmarks.parity_table import markdown
from benchmarks.parity_table import report_path
from benchmarks.parity_table import run_report

METHODS = ["ft_last", "tinytl_b", "tinytl_l", "tinytl_lb", "ft_norm_last",
           "ft_full"]

_MODEL = flags.DEFINE_string("model", "mobilenet_v2", "Zoo model name.")
_WIDTH = flags.DEFINE_float("width_multiplier", None, "Width multiplier.")
_RESOLUTIONS = flags.DEFINE_list("resolutions", ["32"], "Input sides (px).")
_METHODS = flags.DEFINE_list("methods", METHODS, "Methods, one row each.")
_BATCH = flags.DEFINE_integer("batch", 2, "Batch size of the train step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Steps compared per run.")
_REPORTS_DIR = flags.DEFINE_string(
    "reports_dir", "out/verify", "Where each run's JSON report is kept.")


def main(argv):
  del argv
  for resolution in [int(r) for r in _RESOLUTIONS.value]:
    reports = []
    for method in _METHODS.value:
      args = [f"--model={_MODEL.value}", f"--method={method}",
              f"--resolution={resolution}", f"--batch={_BATCH.value}",
              f"--steps={_STEPS.value}"]
      if _WIDTH.value is not None:
        args.append(f"--width_multiplier={_WIDTH.value}")
      path = report_path(_REPORTS_DIR.value, _MODEL.value, _WIDTH.value,
                         method, resolution)
      reports.append(run_report(path, args))
    first = reports[0]
    print(f"**{_MODEL.value}"
          + (f" (width {_WIDTH.value:g})" if _WIDTH.value else "")
          + f", {resolution} px, batch {_BATCH.value}, {_STEPS.value} steps, "
          f"SGD lr {first.get('learning_rate', 'default')}**; weights: "
          f"{first.get('weights')}\n")
    print(markdown(reports))
    print()


if __name__ == "__main__":
  app.run(main)
