"""benchmarks.parity_table: the per-method parity/arena table."""
import json

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
