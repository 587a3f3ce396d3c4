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
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

from absl import app
from absl import flags

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


def report_path(directory: str, model: str, width: Optional[float],
                method: str, resolution: int) -> str:
  tag = model if width is None else f"{model}-{width:g}"
  return os.path.join(directory, f"{tag}_{method}_{resolution}px.json")


def run_report(path: str, args: List[str]) -> Dict:
  """The JSON report at ``path``, running export.verify first if needed."""
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  proc = subprocess.run([sys.executable, "-m", "export.verify", *args,
                         "--format=json"], capture_output=True, text=True,
                        check=False)
  try:
    report = json.loads(proc.stdout.strip().splitlines()[-1])
  except (IndexError, json.JSONDecodeError):
    raise RuntimeError(f"export.verify {' '.join(args)} printed no report "
                       f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}")
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(report, f, sort_keys=True)
  os.replace(tmp, path)
  return report


def _parity_cell(report: Dict) -> str:
  if report["parity"] == "exact":
    return "exact"
  nearest = report.get("nearest_perturbed_reference", {})
  err = max(nearest.get("max_rel_err_loss", 0.0),
            nearest.get("max_rel_err_params", 0.0))
  if report["parity"] == "within_rounding":
    return (f"within rounding (tie at step "
            f"{report['reference_bifurcation_step']}; {err:.1e} to a "
            "1-ulp-perturbed TF run)")
  return f"**FAILED** ({err:.1e} to the nearest perturbed TF run)"


def markdown(reports: List[Dict]) -> str:
  """The table for ``reports`` (one resolution), plus the ft_full /
  tinytl_lb ratios when both rows are present."""
  lines = [
      "| method | parity | loss rel err | param rel err | TF vs perturbed TF "
      "(params) | arena total (B) | head | tail | analytic act.+trainable "
      "(B) | measured / analytic | train.tflite (B) |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  by_method = {}
  for r in reports:
    by_method[r["method"]] = r
    if not r.get("builtin_only"):
      lines.append(f"| {r['method']} | not builtin-only: {r.get('error')} "
                   "| | | | | | | | | |")
      continue
    arena, analytic = r["arena"], r["analytic"]
    modelled = analytic["activations_plus_trainable_params"]
    lines.append(
        f"| {r['method']} | {_parity_cell(r)} | {r['max_rel_err_loss']:.1e} "
        f"| {r['max_rel_err_params']:.1e} "
        f"| {r['reference_sensitivity']['max_rel_err_params']:.1e} "
        f"| {arena['total']:,} | {arena['head']:,} | {arena['tail']:,} "
        f"| {modelled:,} | {arena['total'] / modelled:.1f} "
        f"| {r['flash_bytes']['train_tflite']:,} |")
  full, lb = by_method.get("ft_full"), by_method.get("tinytl_lb")
  if full and lb and full.get("builtin_only") and lb.get("builtin_only"):
    measured = full["arena"]["total"] / lb["arena"]["total"]
    modelled = (full["analytic"]["activations_plus_trainable_params"]
                / lb["analytic"]["activations_plus_trainable_params"])
    lines += ["", f"Measured ratio ft_full / tinytl_lb: **{measured:.1f}×** "
              f"({full['arena']['total']:,} / {lb['arena']['total']:,} B); "
              f"the analytic model gives {modelled:.1f}×."]
  return "\n".join(lines)


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
