"""benchmarks/own_model_files.py: the table and the model files of
benchmarks/own_models.py."""
from benchmarks import own_model_files
from tflite_tl.models import read_model_file


def _report(method, parity="exact", **extra):
  report = {
      "model": "out/own_models/mobilenet_v3_small_0.75.h5", "method": method,
      "resolution": 32, "builtin_only": True, "parity": parity,
      "max_rel_err_loss": 1e-7, "max_rel_err_params": 2e-6,
      "reference_bifurcation_step": None,
      "arena": {"total": 123456}, "flash_bytes": {"train_tflite": 4096},
      "analytic": {"activations_plus_trainable_params": 65432}}
  report.update(extra)
  return report


def test_table_rows_for_passes_ties_and_methods_that_do_not_apply():
  rows = [
      _report("tinytl_b"),
      _report("ft_full", parity="within_rounding",
              reference_bifurcation_step=6,
              one_step={"max_rel_err_loss": 1e-6, "max_rel_err_params": 8e-6}),
      {"model": "out/own_models/sequential_cnn.keras", "method": "tinytl_l",
       "resolution": 28, "builtin_only": False,
       "error": "model 'x' has no DepthwiseConv2D layers, so none. More."},
  ]
  lines = own_model_files.table(rows).splitlines()
  assert lines[2] == ("| mobilenet_v3_small_0.75.h5 | tinytl_b | 32 | exact "
                      "| 1.0e-07 / 2.0e-06 | 123,456 | 65,432 | 4,096 |")
  assert "within rounding (tie at step 6; re-synchronised steps 8.0e-06)" in (
      lines[3])
  assert lines[4] == ("| sequential_cnn.keras | tinytl_l | 28 | not "
                      "applicable: model 'x' has no DepthwiseConv2D layers, "
                      "so none | | | | |")


def test_written_model_file_loads_back(tmp_path):
  path = own_model_files.write_model("sequential_cnn", str(tmp_path))
  assert path.endswith("sequential_cnn.keras")
  assert own_model_files.write_model("sequential_cnn", str(tmp_path)) == path
  assert read_model_file(path).size == (28, 28)
