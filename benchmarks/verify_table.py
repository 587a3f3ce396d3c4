"""Train-step parity and arena per method: runs `python -m export.verify`
for each method and resolution and prints the markdown table of
BENCHMARKS.md ("Train-step arena per method").

  python -m benchmarks.verify_table --model=mobilenet_v2 \\
      --width_multiplier=0.35 --resolutions=32,64 --reports_dir=out/verify
  python -m benchmarks.verify_table --model=tiny --resolutions=32
  python -m benchmarks.verify_table --model=tiny --kernels=tl --precision=int8

Each run is a separate `export.verify` process (so a TFLM crash stays an
error of that row) whose JSON report is kept in --reports_dir; a re-run
reuses the reports already there, so an interrupted table resumes. Arena
figures are measured (TFLM recording allocator), the analytic column is
modelled (tflite_tl.memory). --kernels, --precision and --qas are
export.verify's (the tl flavor and int8 need TFLM_ROOT); each setting keeps
its own report files.
"""
from absl import app
from absl import flags

from benchmarks.parity_table import check_report_settings
from benchmarks.parity_table import lowering_args
from benchmarks.parity_table import lowering_label
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
_KERNELS = flags.DEFINE_enum(
    "kernels", "builtin", ["builtin", "tl"], "Kernel flavor of the lowering "
    "(tl: the TL_* training kernels, needs TFLM_ROOT).")
_PRECISION = flags.DEFINE_enum(
    "precision", "float", ["float", "int8"], "Precision: int8 with --kernels=tl "
    "is an int8 forward pass, with --kernels=builtin int8 frozen weights.")
_QAS = flags.DEFINE_bool(
    "qas", True, "int8: quantization-aware scaling of the updates "
    "(--noqas: plain SGD on the integer copies).")
_REPORTS_DIR = flags.DEFINE_string(
    "reports_dir", "out/verify", "Where each run's JSON report is kept.")


def main(argv):
  del argv
  lowering = (_KERNELS.value, _PRECISION.value, _QAS.value)
  try:
    extra = lowering_args(*lowering)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  for resolution in [int(r) for r in _RESOLUTIONS.value]:
    reports = []
    for method in _METHODS.value:
      args = [f"--model={_MODEL.value}", f"--method={method}",
              f"--resolution={resolution}", f"--batch={_BATCH.value}",
              f"--steps={_STEPS.value}", *extra]
      if _WIDTH.value is not None:
        args.append(f"--width_multiplier={_WIDTH.value}")
      path = report_path(_REPORTS_DIR.value, _MODEL.value, _WIDTH.value,
                         method, resolution, *lowering, batch=_BATCH.value,
                         steps=_STEPS.value)
      report = run_report(path, args)
      expected = {"batch": _BATCH.value, "steps": _STEPS.value,
                  "kernels": _KERNELS.value, "precision": _PRECISION.value}
      if _PRECISION.value == "int8":
        expected["qas"] = _QAS.value
      check_report_settings(path, report, expected)
      reports.append(report)
    first = reports[0]
    print(f"**{_MODEL.value}"
          + (f" (width {_WIDTH.value:g})" if _WIDTH.value else "")
          + f", {resolution} px, batch {_BATCH.value}, {_STEPS.value} steps, "
          f"{lowering_label(*lowering)}, "
          f"SGD lr {first.get('learning_rate', 'default')}**; weights: "
          f"{first.get('weights')}\n")
    print(markdown(reports))
    print()


if __name__ == "__main__":
  app.run(main)
