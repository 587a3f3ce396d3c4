"""python -m export.verify and its library (tflite_tl.verify.check)."""
import json
import os
import subprocess
import sys

import pytest

from tflite_tl.verify import check as verify_lib

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KEYS = {"builtin_only", "ops", "steps", "max_rel_err_loss",
         "max_rel_err_params", "arena"}


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=_ROOT)
  return subprocess.run([sys.executable, "-m", "export.verify", *args],
                        capture_output=True, text=True, cwd=_ROOT, env=env,
                        timeout=1800, check=False)


def test_cli_reports_parity_on_tiny():
  proc = _cli("--model=tiny", "--method=tinytl_b", "--resolution=16",
              "--batch=2", "--steps=3", "--format=json")
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads(proc.stdout)
  assert _KEYS <= set(report)
  assert report["builtin_only"] is True and report["passed"] is True
  assert report["steps"] == 3 and len(report["losses"]["tflm"]) == 3
  assert report["max_rel_err_loss"] <= 1e-4
  assert report["max_rel_err_params"] <= 1e-4
  arena = report["arena"]
  assert arena["total"] == arena["head"] + arena["tail"] > 0
  # The head's peak, from tensor lifetimes, bounds the measured head.
  peak = report["head_peak"]
  assert 0 < peak["peak_bytes"] <= arena["head"]
  assert peak["at_peak"] and peak["source"].startswith("modelled")
  ops = report["ops"]
  assert ops["CONV_2D"] + ops.get("FULLY_CONNECTED", 0) >= 3
  assert "FLEX" not in json.dumps(report)


def test_cli_exit_code_follows_the_verdict(monkeypatch, capsys):
  from export import verify as cli  # pylint: disable=import-outside-toplevel
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.FLAGS(["verify", "--format=text"])
  for passed, code in ((True, 0), (False, 1)):
    monkeypatch.setattr(verify_lib, "verify", lambda config, p=passed: {
        "builtin_only": False, "error": "TILE", "passed": p})
    with pytest.raises(SystemExit) as exit_info:
      cli.main([])
    assert exit_info.value.code == code
  assert "TILE" in capsys.readouterr().out


METHODS = ["ft_full", "ft_last", "ft_norm_last", "tinytl_b", "tinytl_l",
           "tinytl_lb"]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model,resolution,width", [
    ("tiny", 32, None), ("mobilenet_v2", 32, 0.35), ("mobilenet_v2", 64, 0.35)])
def test_twenty_steps_parity(model, resolution, width, method):
  report = verify_lib.verify(verify_lib.VerifyConfig(
      model=model, method=method, resolution=resolution, batch=2, steps=20,
      width_multiplier=width))
  assert report["builtin_only"]
  assert report["passed"], report
  if report["parity"] == "exact":
    assert report["max_rel_err_loss"] <= 1e-4, report
    assert report["max_rel_err_params"] <= 1e-4, report
  else:
    # TFLM took the other side of a rounding tie: TF itself parts from its
    # 1-ulp-perturbed twin, and TFLM matches one such twin or, started from
    # TF's state, every single step.
    assert report["parity"] == "within_rounding"
    assert (report["reference_bifurcation_step"] is not None
            or report["reference_sensitivity"]["max_rel_err_params"] > 1e-4)
    check = report.get("one_step", report["nearest_perturbed_reference"])
    assert check["max_rel_err_loss"] <= 1e-4, report
    assert check["max_rel_err_params"] <= 1e-4, report


def test_verify_starts_from_the_shipped_backbone_when_it_matches():
  model, weights = verify_lib.build_model(verify_lib.VerifyConfig(
      model="mobilenet_v2", method="tinytl_b", width_multiplier=0.35,
      resolution=64))
  assert weights.startswith("pretrained mobilenet_v2")
  assert model.input_shape[1:] == (64, 64, 1)
  _, weights = verify_lib.build_model(verify_lib.VerifyConfig(
      model="mobilenet_v2", method="tinytl_b", width_multiplier=0.5))
  assert weights.startswith("random") and "width multiplier" in weights
  with pytest.raises(ValueError, match="width multiplier"):
    verify_lib.build_model(verify_lib.VerifyConfig(
        model="mobilenet_v2", method="tinytl_b", width_multiplier=0.5,
        weights="pretrained"))
