"""Per-method parity/arena table from `export.verify` reports (the logic of
`python -m benchmarks.verify_table`, kept free of absl flags)."""
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

from tflite_tl import atomic


def lowering_tag(kernels: str = "builtin", precision: str = "float",
                 qas: bool = True) -> str:
  """File-name part of a lowering: empty for the default (builtin float),
  so reports written before lowerings had names keep their paths."""
  if kernels == "builtin" and precision == "float":
    return ""
  tag = f"_{kernels}"
  if precision == "int8":
    tag += "_int8" + ("" if qas or kernels == "builtin" else "_noqas")
  return tag


#: The batch and step count that report names leave out (verify_table's
#: defaults, the settings of the reports written before names carried them).
DEFAULT_BATCH, DEFAULT_STEPS = 2, 20


def lowering_args(kernels: str, precision: str, qas: bool) -> List[str]:
  """export.verify flags of a lowering (none for the default one)."""
  args = []
  if kernels != "builtin":
    args.append(f"--kernels={kernels}")
  if precision != "float":
    args.append(f"--precision={precision}")
    if kernels == "tl":  # builtin int8 trains float32 parameters: no QAS
      args.append("--qas" if qas else "--noqas")
  return args


def lowering_label(kernels: str, precision: str, qas: bool) -> str:
  """E.g. ``builtin float``, ``tl int8 no QAS``."""
  if precision == "float":
    return f"{kernels} float"
  if kernels == "builtin":
    return "builtin int8 weights"
  return f"{kernels} int8 {'QAS' if qas else 'no QAS'}"


def report_path(directory: str, model: str, width: Optional[float],
                method: str, resolution: int, kernels: str = "builtin",
                precision: str = "float", qas: bool = True,
                batch: int = DEFAULT_BATCH, steps: int = DEFAULT_STEPS) -> str:
  """Where a run's report is kept. Every setting that changes the report is
  in the name unless it has its default value, so runs of different
  settings never share a file and the reports written before these
  settings had names keep their paths."""
  tag = model if width is None else f"{model}-{width:g}"
  low = lowering_tag(kernels, precision, qas)
  bs = "" if batch == DEFAULT_BATCH else f"_b{batch}"
  st = "" if steps == DEFAULT_STEPS else f"_{steps}steps"
  return os.path.join(directory,
                      f"{tag}_{method}_{resolution}px{bs}{st}{low}.json")


def check_report_settings(path: str, report: Dict,
                          expected: Dict[str, object]) -> None:
  """ValueError if a kept report was made with other settings than asked
  (a file renamed or written by an older naming)."""
  defaults = {"kernels": "builtin", "precision": "float"}
  wrong = {k: (report.get(k, defaults.get(k)), v)
           for k, v in expected.items()
           if k in report or k in defaults
           if report.get(k, defaults.get(k)) != v}
  if wrong:
    found = ", ".join(f"{k} {a!r} not {b!r}"
                      for k, (a, b) in sorted(wrong.items()))
    raise ValueError(f"{path} holds a report made with other settings "
                     f"({found}); delete it or use another --reports_dir.")


def _measured(report: Dict) -> bool:
  """A report with figures (a lowered step), builtin-only or kernel flavor."""
  return "error" not in report and "arena" in report


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
          if _measured(r) and r["arena"].get("breakdown")]
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
    if not _measured(r):
      lines.append(f"| {r['method']} | not lowered: {r.get('error')} "
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
  if full and lb and _measured(full) and _measured(lb):
    measured = full["arena"]["total"] / lb["arena"]["total"]
    modelled = (full["analytic"]["activations_plus_trainable_params"]
                / lb["analytic"]["activations_plus_trainable_params"])
    lines += ["", f"Measured ratio ft_full / tinytl_lb: **{measured:.1f}×** "
              f"({full['arena']['total']:,} / {lb['arena']['total']:,} B); "
              f"the analytic model gives {modelled:.1f}×."]
  return "\n".join(lines)
