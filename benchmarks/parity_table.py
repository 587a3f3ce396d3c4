"""Per-method parity/arena table from `export.verify` reports (the logic of
`python -m benchmarks.verify_table`, kept free of absl flags)."""
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

from tflite_tl import atomic


def report_path(directory: str, model: str, width: Optional[float],
                method: str, resolution: int) -> str:
  tag = model if width is None else f"{model}-{width:g}"
  return os.path.join(directory, f"{tag}_{method}_{resolution}px.json")


def run_report(path: str, args: List[str], allow_failure: bool = False
               ) -> Dict:
  """The JSON report at ``path``, running export.verify first if needed.

  With ``allow_failure``, a run that ends with export.verify's one-line
  error (e.g. a method that does not apply to the model) is kept as a
  report ``{"error": line, "builtin_only": False, ...}`` instead of raising.
  """
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  proc = subprocess.run([sys.executable, "-m", "export.verify", *args,
                         "--format=json"], capture_output=True, text=True,
                        check=False)
  try:
    report = json.loads(proc.stdout.strip().splitlines()[-1])
  except (IndexError, json.JSONDecodeError):
    failure = [l for l in proc.stderr.splitlines()
               if l.startswith("verify failed: ")]
    if not (allow_failure and failure):
      raise RuntimeError(f"export.verify {' '.join(args)} printed no report "
                         f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    flags_given = dict(a[2:].split("=", 1) for a in args if "=" in a)
    report = {"model": flags_given.get("model"),
              "method": flags_given.get("method"),
              "resolution": int(flags_given.get("resolution", 0)),
              "builtin_only": False,
              "error": failure[-1][len("verify failed: "):]}
  atomic.write_file(path, json.dumps(report, sort_keys=True))
  return report


def _worst(errors: Dict) -> float:
  return max(errors.get("max_rel_err_loss", 0.0),
             errors.get("max_rel_err_params", 0.0))


def parity_cell(report: Dict) -> str:
  """The parity verdict of a report, with the evidence for it."""
  if report["parity"] == "exact":
    return "exact"
  nearest = _worst(report.get("nearest_perturbed_reference", {}))
  one_step = report.get("one_step")
  if report["parity"] == "within_rounding":
    tie = report["reference_bifurcation_step"]
    where = f"tie at step {tie}" if tie else "ill-conditioned"
    if one_step:
      return (f"within rounding ({where}; re-synchronised steps "
              f"{_worst(one_step):.1e})")
    return (f"within rounding ({where}; {nearest:.1e} to a "
            "1-ulp-perturbed TF run)")
  detail = (f"re-synchronised steps {_worst(one_step):.1e}" if one_step
            else f"{nearest:.1e} to the nearest perturbed TF run")
  return f"**FAILED** ({detail})"


#: RecordingMicroAllocator categories that make up the arena's tail.
TAIL_PARTS = (("NodeAndRegistration struct", "per-op structs"),
              ("TfLiteEvalTensor data", "eval tensors"),
              ("Persistent buffer data", "kernels' persistent buffers"))


def tail_table(reports: List[Dict]) -> List[str]:
  """Where each method's tail goes (rows for reports with a breakdown)."""
  rows = [r for r in reports
          if r.get("builtin_only") and r["arena"].get("breakdown")]
  if not rows:
    return []
  lines = ["| method | ops | tail (B) | "
           + " | ".join(label for _, label in TAIL_PARTS) + " |",
           "| --- | ---: | ---: | " + " | ".join("---:" for _ in TAIL_PARTS)
           + " |"]
  for r in rows:
    parts = r["arena"]["breakdown"]
    lines.append(
        f"| {r['method']} | {sum(r['ops'].values()):,} "
        f"| {r['arena']['tail']:,} | "
        + " | ".join(f"{parts.get(key, 0):,}" for key, _ in TAIL_PARTS)
        + " |")
  return lines


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
        f"| {r['method']} | {parity_cell(r)} | {r['max_rel_err_loss']:.1e} "
        f"| {r['max_rel_err_params']:.1e} "
        f"| {r['reference_sensitivity']['max_rel_err_params']:.1e} "
        f"| {arena['total']:,} | {arena['head']:,} | {arena['tail']:,} "
        f"| {modelled:,} | {arena['total'] / modelled:.1f} "
        f"| {r['flash_bytes']['train_tflite']:,} |")
  lines += ["", *tail_table(reports)]
  full, lb = by_method.get("ft_full"), by_method.get("tinytl_lb")
  if full and lb and full.get("builtin_only") and lb.get("builtin_only"):
    measured = full["arena"]["total"] / lb["arena"]["total"]
    modelled = (full["analytic"]["activations_plus_trainable_params"]
                / lb["analytic"]["activations_plus_trainable_params"])
    lines += ["", f"Measured ratio ft_full / tinytl_lb: **{measured:.1f}×** "
              f"({full['arena']['total']:,} / {lb['arena']['total']:,} B); "
              f"the analytic model gives {modelled:.1f}×."]
  return "\n".join(lines)
