"""TF-vs-TFLM train-step comparison (tflite_tl.verify.train_step): verdicts
on a fake step with rounding-decided branches, without the TFLM runtime."""
import types
import zlib

import numpy as np

from tflite_tl._compat import tf
from tflite_tl.tflm import runner
from tflite_tl.verify import train_step


class _TieModule:
  """A fake train step with a rounding-decided branch, like a ReLU tie.

  The step moves the parameter up or down depending on a checksum of the
  images' float32 bytes, so any one-ulp change of an input picks the branch
  at random, as a pre-activation sitting on a ReLU threshold does.
  ``bug`` scales the update, standing in for a wrong gradient.
  """

  def __init__(self, bug=1.0):
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


class _Int8TieModule:
  """A fake int8 train step: the images are quantized first (a 1-ulp input
  perturbation changes nothing), and each step's branch depends on the
  parameters' exact float32 bytes, as an int8 requantization that lands on
  a rounding tie depends on a trained bias. ``noise`` adds one float32 ulp
  to the parameters after each update (a kernel's different summation
  order); ``bug`` scales the update (a wrong gradient)."""

  def __init__(self, noise=False, bug=1.0):
    self.params = [tf.Variable(np.full(3, 0.5, np.float32), name="w")]
    self.param_names = ["w"]
    self.slots = []
    self.noise = noise
    self.bug = bug

  def train_step(self, x, y):
    del y
    xq = np.round(np.asarray(x) * 127.0).astype(np.int8)
    w = self.params[0].numpy()
    branch = 1.0 if zlib.crc32(xq.tobytes() + w.tobytes()) % 2 else -1.0
    new = (w + np.float32(self.bug * branch * 0.1)).astype(np.float32)
    if self.noise:
      new = np.nextafter(new, np.float32(np.inf)).astype(np.float32)
    self.params[0].assign(new)
    return {"loss": np.float32(1.0 + new.sum())}

  def param_values(self):
    return {"w": self.params[0].numpy()}


def _fake_compare(monkeypatch, tflm_module, tflm_batches, tf_module, batches,
                  free_run_seed=None, **lowered_attrs):
  """compare() with ``tflm_module`` standing in for the TFLM runtime.

  The free TFLM run steps through ``tflm_batches`` (or through ``batches``
  perturbed with ``free_run_seed``); a re-synchronised single step (a model
  from write_params) starts from the given state and uses the step's data.
  """
  def fake_write_params(tflite, state):
    del tflite
    return ("state", state)

  def fake_tflm(tflite, data, **kwargs):
    del kwargs
    if isinstance(tflite, tuple):
      tflm_module.params[0].assign(tflite[1]["w"])
    elif free_run_seed is not None:
      data = train_step.perturbed(batches, free_run_seed)
    else:
      data = tflm_batches
    losses = [float(tflm_module.train_step(x, y)["loss"]) for x, y in data]
    return runner.TrainRun(np.array(losses), tflm_module.param_values(),
                           None)

  monkeypatch.setattr(train_step, "run_train_steps", fake_tflm)
  monkeypatch.setattr(train_step, "write_params", fake_write_params)
  lowered = types.SimpleNamespace(train_tflite=b"", module=tf_module,
                                  **lowered_attrs)
  return train_step.compare(lowered, batches, arena=False, seed=0)


def _batches():
  return train_step.random_batches(0, 12, 2, [4, 4, 1], 3)


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
  tflm_batches = train_step.perturbed(batches, 0)
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
  for tflm_batches in (batches, train_step.perturbed(batches, 0)):
    result = _fake_compare(monkeypatch, _TieModule(bug=1.01), tflm_batches,
                           _TieModule(), batches)
    assert result["parity"] == "failed", result
    assert result["nearest_perturbed_reference"]["max_rel_err_params"] > 1e-4
    assert result["one_step"]["max_rel_err_params"] > 1e-4


def test_compare_resynchronises_an_int8_step_the_input_probe_cannot_see(
    monkeypatch):
  batches = _batches()
  # The reference never parts from its perturbed twins (the int8 images
  # absorb the perturbation), but one ulp of parameter noise per step
  # sends the free TFLM run down other branches.
  int8 = dict(kernels="tl", precision="int8")
  result = _fake_compare(monkeypatch, _Int8TieModule(noise=True), batches,
                         _Int8TieModule(), batches, **int8)
  assert result["reference_bifurcation_step"] is None
  assert result["max_rel_err_loss"] > 1e-4
  assert result["input_probe_blind"]
  assert result["one_step"]["max_rel_err_params"] < 1e-6
  assert result["parity"] == "within_rounding"
  # A float graph's input probe is not blind: the same run fails there.
  result = _fake_compare(monkeypatch, _Int8TieModule(noise=True), batches,
                         _Int8TieModule(), batches)
  assert not result["input_probe_blind"] and "one_step" not in result
  assert result["parity"] == "failed"
  # A wrong step fails in int8 too.
  result = _fake_compare(monkeypatch, _Int8TieModule(noise=True, bug=1.01),
                         batches, _Int8TieModule(), batches, **int8)
  assert result["one_step"]["max_rel_err_params"] > 1e-4
  assert result["parity"] == "failed"
