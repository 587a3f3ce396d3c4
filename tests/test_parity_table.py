"""benchmarks.parity_table: the per-method parity/arena table."""
import json
import os
import subprocess
import sys

import pytest

from benchmarks import parity_table as verify_table


def _report(method, parity="exact", total=1000, modelled=500):
  report = {
      "method": method, "builtin_only": True, "parity": parity,
      "max_rel_err_loss": 1e-7, "max_rel_err_params": 2e-7,
      "reference_sensitivity": {"max_rel_err_params": 3e-7},
      "reference_bifurcation_step": None,
      "arena": {"total": total, "head": total - 100, "tail": 100,
                "breakdown": {"NodeAndRegistration struct": 60,
                              "TfLiteEvalTensor data": 30,
                              "Persistent buffer data": 10}},
      "ops": {"CONV_2D": 3, "ADD": 2},
      "analytic": {"activations_plus_trainable_params": modelled},
      "flash_bytes": {"train_tflite": 4096}}
  if parity != "exact":
    report["reference_bifurcation_step"] = 9
    report["nearest_perturbed_reference"] = {
        "max_rel_err_loss": 2e-7, "max_rel_err_params": 1e-6}
  return report


def test_markdown_rows_and_ratio():
  table = verify_table.markdown([
      _report("ft_full", total=6000, modelled=2000),
      _report("tinytl_lb", parity="within_rounding", total=1000,
              modelled=500)])
  assert "| ft_full | exact | 1.0e-07 | 2.0e-07 | 3.0e-07 | 6,000 |" in table
  assert "within rounding (tie at step 9; 1.0e-06" in table
  assert "**6.0×** (6,000 / 1,000 B); the analytic model gives 4.0×" in table
  assert "| ft_full | 5 | 100 | 60 | 30 | 10 |" in table


def test_resynchronised_rows_say_so():
  report = _report("ft_full", parity="within_rounding")
  report["one_step"] = {"max_rel_err_loss": 2e-7, "max_rel_err_params": 3e-7}
  table = verify_table.markdown([report])
  assert "within rounding (tie at step 9; re-synchronised steps 3.0e-07)" in table


def test_failed_rows_are_marked():
  table = verify_table.markdown([_report("tinytl_l", parity="failed")])
  assert "**FAILED**" in table


def test_existing_reports_are_reused(tmp_path):
  path = verify_table.report_path(str(tmp_path), "mobilenet_v2", 0.35,
                                  "tinytl_b", 32)
  assert path.endswith("mobilenet_v2-0.35_tinytl_b_32px.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(_report("tinytl_b"), f)
  # No process runs: the args would fail if export.verify were started.
  assert verify_table.run_report(path, ["--model=nope"])["method"] == "tinytl_b"


def test_each_lowering_batch_and_step_count_has_its_own_report(tmp_path):
  paths = {verify_table.report_path(str(tmp_path), "tiny", None, "tinytl_b",
                                    32, *low, batch=b, steps=s)
           for low in (("builtin", "float", True), ("tl", "float", True),
                       ("tl", "int8", True), ("tl", "int8", False))
           for b in (1, 2) for s in (20, 5)}
  assert len(paths) == 16
  # The default settings keep the names reports had before they existed.
  assert verify_table.report_path("d", "mobilenet_v2", 0.35, "ft_last",
                                  32) == "d/mobilenet_v2-0.35_ft_last_32px.json"
  assert verify_table.report_path(
      "d", "tiny", None, "tinytl_b", 32, "tl", "int8", False,
      batch=1) == "d/tiny_tinytl_b_32px_b1_tl_int8_noqas.json"


def test_lowering_flags_for_export_verify():
  assert verify_table.lowering_args("builtin", "float", True) == []
  assert verify_table.lowering_args("tl", "int8", False) == [
      "--kernels=tl", "--precision=int8", "--noqas"]
  assert verify_table.lowering_args("builtin", "int8", False) == [
      "--precision=int8"]
  assert verify_table.lowering_label("builtin", "int8", True) == (
      "builtin int8 weights")
  assert verify_table.lowering_tag("builtin", "int8", False) == (
      "_builtin_int8")
  assert verify_table.lowering_label("tl", "int8", True) == "tl int8 QAS"


def test_a_kept_report_of_other_settings_is_refused():
  report = _report("tinytl_b")
  report.update(batch=2, steps=20)
  verify_table.check_report_settings("p", report, {"batch": 2, "steps": 20,
                                                   "kernels": "builtin"})
  with pytest.raises(ValueError, match="kernels 'builtin' not 'tl'"):
    verify_table.check_report_settings("p", report, {"kernels": "tl"})


def test_stored_reports_pass_their_settings_check():
  directory = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "benchmarks", "results", "verify")
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), encoding="utf-8") as f:
      report = json.load(f)
    verify_table.check_report_settings(name, report, {
        "batch": 2, "steps": 20, "kernels": "builtin", "precision": "float"})


def test_kernel_flavor_reports_are_rows_of_the_table():
  tl = _report("tinytl_b")
  tl.update(builtin_only=False, kernels="tl")
  table = verify_table.markdown([tl])
  assert "| tinytl_b | exact |" in table and "not lowered" not in table
  failed = {"method": "ft_full", "builtin_only": False, "error": "no rule"}
  assert "| ft_full | not lowered: no rule |" in verify_table.markdown(
      [failed])


@pytest.mark.slow  # one export.verify process: lowering, TF and TFLM steps
def test_cli_int8_rows_keep_their_own_reports(tmp_path, native_runner):
  del native_runner
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
      [sys.executable, "-m", "benchmarks.verify_table", "--model=tiny",
       "--methods=ft_last", "--resolutions=32", "--kernels=tl",
       "--precision=int8", "--noqas", "--steps=3",
       f"--reports_dir={tmp_path}"], cwd=root, capture_output=True,
      text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "tl int8 no QAS" in proc.stdout and "| ft_last |" in proc.stdout
  assert os.listdir(tmp_path) == ["tiny_ft_last_32px_3steps_tl_int8_noqas.json"]
