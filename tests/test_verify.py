"""python -m export.verify and the verify library: TF vs TFLM parity."""
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from tflite_tl.lower import verify as verify_lib

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


class _TieModule:
  """A fake train step with a rounding-decided branch, like a ReLU tie.

  The step moves the parameter up or down depending on a checksum of the
  images' float32 bytes, so any one-ulp change of an input picks the branch
  at random, as a pre-activation sitting on a ReLU threshold does.
  ``bug`` scales the update, standing in for a wrong gradient.
  """

  def __init__(self, bug=1.0):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    self.params = [tf.Variable(np.zeros(3, np.float32), name="w")]
    self.param_names = ["w"]
    self.slots = []
    self.bug = bug

  def train_step(self, x, y):
    del y
    branch = 1.0 if zlib.crc32(np.asarray(x).tobytes()) % 2 else -1.0
    new = self.params[0].numpy() + np.float32(self.bug * branch * 0.1)
    self.params[0].assign(new)
    return {"loss": np.float32(1.0 + new.sum())}

  def param_values(self):
    return {"w": self.params[0].numpy()}


def _fake_compare(monkeypatch, tflm_module, tflm_batches, tf_module, batches,
                  free_run_seed=None):
  """compare() with ``tflm_module`` standing in for the TFLM runtime.

  The free TFLM run steps through ``tflm_batches`` (or through ``batches``
  perturbed with ``free_run_seed``); a re-synchronised single step (a model
  from write_params) starts from the given state and uses the step's data.
  """
  import types  # pylint: disable=import-outside-toplevel
  from tflite_tl.tflm import runner  # pylint: disable=import-outside-toplevel

  def fake_write_params(tflite, state):
    del tflite
    return ("state", state)

  def fake_tflm(tflite, data, **kwargs):
    del kwargs
    if isinstance(tflite, tuple):
      tflm_module.params[0].assign(tflite[1]["w"])
    elif free_run_seed is not None:
      data = verify_lib.perturbed(batches, free_run_seed)
    else:
      data = tflm_batches
    losses = [float(tflm_module.train_step(x, y)["loss"]) for x, y in data]
    return runner.TrainRun(np.array(losses), tflm_module.param_values(),
                           None)

  monkeypatch.setattr(verify_lib, "run_train_steps", fake_tflm)
  monkeypatch.setattr(verify_lib, "write_params", fake_write_params)
  lowered = types.SimpleNamespace(train_tflite=b"", module=tf_module)
  return verify_lib.compare(lowered, batches, arena=False, seed=0)


def _batches():
  return verify_lib.random_batches(0, 12, 2, [4, 4, 1], 3)


def test_compare_exact_when_tflm_follows_the_same_branches(monkeypatch):
  batches = _batches()
  result = _fake_compare(monkeypatch, _TieModule(), batches, _TieModule(),
                         batches)
  assert result["parity"] == "exact"
  assert result["max_rel_err_params"] == 0.0
  # The fake is all ties: the reference parts from its perturbed twin.
  assert result["reference_bifurcation_step"] is not None
  assert result["reference_sensitivity"]["max_rel_err_params"] > 1e-4


def test_compare_accepts_a_run_that_took_the_other_side_of_a_tie(
    monkeypatch):
  batches = _batches()
  # "TFLM" computes exactly TF's step, but its rounding put the ties on the
  # side that the first perturbed reference takes.
  tflm_batches = verify_lib.perturbed(batches, 0)
  result = _fake_compare(monkeypatch, _TieModule(), tflm_batches,
                         _TieModule(), batches)
  assert result["max_rel_err_params"] > 1e-4
  assert result["parity"] == "within_rounding"
  assert result["nearest_perturbed_reference"]["max_rel_err_params"] == 0.0


def test_compare_resynchronises_when_no_perturbed_run_matches(monkeypatch):
  batches = _batches()
  # TFLM's free run took a branch pattern none of the perturbed TF runs
  # took; started from TF's state, each of its steps equals TF's.
  result = _fake_compare(monkeypatch, _TieModule(), None, _TieModule(),
                         batches, free_run_seed=50)
  assert result["nearest_perturbed_reference"]["max_rel_err_params"] > 1e-4
  assert result["one_step"]["max_rel_err_params"] == 0.0
  assert result["parity"] == "within_rounding"


def test_compare_fails_a_wrong_step_even_on_an_ill_conditioned_trajectory(
    monkeypatch):
  batches = _batches()
  for tflm_batches in (batches, verify_lib.perturbed(batches, 0)):
    result = _fake_compare(monkeypatch, _TieModule(bug=1.01), tflm_batches,
                           _TieModule(), batches)
    assert result["parity"] == "failed", result
    assert result["nearest_perturbed_reference"]["max_rel_err_params"] > 1e-4
    assert result["one_step"]["max_rel_err_params"] > 1e-4


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
