"""Parity of a lowered train step: N steps in TF and in the real TFLM
interpreter on the same data, with the error measure of
:mod:`tflite_tl.verify.errors`.

Rounding and bifurcations. ReLU/ReLU6 masks make the train step
discontinuous: a pre-activation that lands within an ulp of 0 or 6 opens or
closes its mask depending on the order of a float32 sum, which TF and TFLM
(both float32, different kernels) need not share. After such a tie the two
trajectories follow different, equally correct branches and drift apart by
far more than rounding (e.g. mobilenet_v2 0.35 / tinytl_l / 32 px, seed 0,
with pointwise convs lowered to CONV_2D: one ReLU6 input of block16 sits
1.5e-7 from its threshold in step 9, and the losses of steps 10-20 differ by
up to 1e-2). So :func:`compare` also

- re-runs the TF reference from the same start on inputs perturbed by one
  float32 ulp (relative 2**-24) and gives the same error measures between
  the two TF runs (``reference_sensitivity``) and the first step at which
  their losses part by more than the tolerance (``reference_bifurcation_step``,
  1-based; None when they never do);
- when TFLM misses the unperturbed reference, compares it with
  ``PERTURBED_REFERENCES`` ulp-perturbed TF runs as well. A TFLM run that
  matches one of them within the tolerance is what TF itself computes for
  inputs equal to the given ones up to float32 rounding (backward-stable):
  ``parity`` is then ``"within_rounding"``. A lowering bug misses all of them;
- when no perturbed run matches either (several ties, each a coin flip),
  or when the probe cannot see the ties (an int8 kernel-flavor graph
  quantizes its images before any arithmetic, so a 1-ulp input perturbation
  changes nothing, while its requantizations still flip on float noise of
  the trained parameters: a rounding difference of 1e-7 in a bias moves an
  int8 activation by one step, the losses of the next steps by 1e-4),
  re-synchronises: before every step TFLM is given TF's current parameters
  (``write_params``) and runs that one step, and the step's loss and
  updated parameters are compared with TF's (``one_step``). This is the
  lowering's own error, step by step along TF's trajectory, free of the
  branch history; a wrong gradient shows up in every step.

``parity`` is ``"exact"`` (the unperturbed reference matches),
``"within_rounding"`` (the reference itself bifurcates under 1-ulp input
noise, and TFLM matches a perturbed run or every re-synchronised step) or
``"failed"``.
"""
import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from tflite_tl.lower import LoweredModel
from tflite_tl.lower import write_params
from tflite_tl.lower.module import MOMENTUM_SUFFIX
from tflite_tl.tflm import run_train_steps
from tflite_tl.verify import errors as errors_lib
from tflite_tl.verify.errors import round_figure

DEFAULT_TOLERANCE = 1e-4
VERDICTS = ("exact", "within_rounding", "failed")
# One float32 ulp at 1.0: the size of a rounding difference in the inputs.
ULP_PERTURBATION = 2.0 ** -24
# TF runs on ulp-perturbed inputs that a TFLM run missing the unperturbed
# reference is also compared with (each tie is a coin flip per run).
PERTURBED_REFERENCES = 4


def random_batches(seed: int, steps: int, batch: int, image_shape,
                   num_classes: int):
  """Seeded images in [0, 1] and int32 labels, one batch per step."""
  rs = np.random.RandomState(seed)
  return [(rs.rand(batch, *image_shape).astype(np.float32),
           rs.randint(0, num_classes, batch).astype(np.int32))
          for _ in range(steps)]


def perturbed(batches, seed: int, relative: float = ULP_PERTURBATION):
  """``batches`` with every image entry scaled by 1 +- ``relative``."""
  rs = np.random.RandomState(seed + 1)
  return [((x * (1.0 + relative * rs.choice([-1.0, 1.0], x.shape)))
           .astype(np.float32), y) for x, y in batches]


def _tf_run(module, batches):
  losses = np.array([float(np.asarray(module.train_step(x, y)["loss"])
                           .reshape(-1)[0]) for x, y in batches])
  return losses, module.param_values()


def _first_parting(losses, ref_losses, tolerance: float) -> Optional[int]:
  for step, (a, b) in enumerate(zip(losses, ref_losses), start=1):
    if errors_lib.rel_err(a, b) > tolerance:
      return step
  return None


def _quantizes_images(lowered: LoweredModel) -> bool:
  """True for a kernel-flavor int8 train step, whose images input is int8."""
  return (getattr(lowered, "kernels", "builtin") == "tl"
          and getattr(lowered, "precision", "float") == "int8")


def compare(lowered: LoweredModel, batches, arena: bool = True,
            tolerance: float = DEFAULT_TOLERANCE, seed: int = 0,
            perturbed_references: int = PERTURBED_REFERENCES) -> Dict:
  """Runs ``batches`` through TFLM and the TF reference and compares them
  (see the module docstring).

  Returns the errors of :func:`tflite_tl.verify.errors.errors`, the losses
  of both runs (``tf_losses``, ``tflm_losses``), the measured ``arena`` (or
  None), ``reference_sensitivity``, ``reference_bifurcation_step``,
  ``parity`` and, where computed, ``nearest_perturbed_reference`` and
  ``one_step``. The unperturbed TF reference runs last, so the module's
  variables end where it ends.
  """
  module = lowered.module
  variables = module.params + module.slots
  start = [v.numpy() for v in variables]
  batches = [(np.asarray(x, np.float32), np.asarray(y, np.int32))
             for x, y in batches]

  def tf_run(data):
    for var, value in zip(variables, start):
      var.assign(value)
    return _tf_run(module, data)

  # Parity compares the graph as lowered with TF: every update applied,
  # finite or not (skipping is a training policy, not the graph's math).
  tflm = run_train_steps(lowered.train_tflite, batches, read_params=True,
                         measure_arena=arena, skip_non_finite=False)
  perturbed_runs = [tf_run(perturbed(batches, seed + k))
                    for k in range(max(1, perturbed_references))]
  tf_losses, tf_params = tf_run(batches)
  result = errors_lib.errors(tflm.losses, tflm.params, tf_losses, tf_params)
  result.update(tf_losses=tf_losses, tflm_losses=tflm.losses,
                arena=tflm.arena)
  first = perturbed_runs[0]
  result["reference_sensitivity"] = errors_lib.errors(
      first[0], first[1], tf_losses, tf_params)
  result["reference_bifurcation_step"] = _first_parting(
      first[0], tf_losses, tolerance)
  if errors_lib.within(result, tolerance):
    result["parity"] = "exact"
    return result
  nearest = min(
      (dict(errors_lib.errors(tflm.losses, tflm.params, losses, params),
            draw=k)
       for k, (losses, params) in enumerate(perturbed_runs)),
      key=lambda e: max(e["max_rel_err_loss"], e["max_rel_err_params"]))
  result["nearest_perturbed_reference"] = nearest
  reference_bifurcates = (
      result["reference_bifurcation_step"] is not None
      or not errors_lib.within(result["reference_sensitivity"], tolerance))
  # The input probe is blind to an int8 graph's own rounding ties.
  probe_blind = _quantizes_images(lowered)
  result["input_probe_blind"] = probe_blind
  if errors_lib.within(nearest, tolerance):
    result["parity"] = "within_rounding"
  elif reference_bifurcates or probe_blind:
    # Replays the unperturbed reference from the start, step by step.
    for var, value in zip(variables, start):
      var.assign(value)
    result["one_step"] = one_step_errors(lowered, batches)
    result["parity"] = ("within_rounding"
                        if errors_lib.within(result["one_step"], tolerance)
                        else "failed")
  else:
    result["parity"] = "failed"
  return result


def one_step_errors(lowered: LoweredModel, batches) -> Dict:
  """Worst errors of single TFLM steps started from TF's parameters.

  Runs the TF reference through ``batches`` from the module's current state;
  before each step the TFLM model gets TF's parameters (and momentum) and
  runs that step alone. Returns the worst loss and parameter errors over
  the steps, the step and tensor where the parameter error peaked.
  """
  module = lowered.module
  names = list(module.param_names) + [
      n + MOMENTUM_SUFFIX for n in module.param_names[:len(module.slots)]]
  variables = module.params + module.slots
  worst = {"max_rel_err_loss": 0.0, "max_rel_err_params": 0.0,
           "worst_param": None, "worst_step": None}
  for step, (x, y) in enumerate(batches, start=1):
    state = {n: v.numpy() for n, v in zip(names, variables)}
    tflm = run_train_steps(write_params(lowered.train_tflite, state),
                           [(x, y)], read_params=True, skip_non_finite=False)
    losses, params = _tf_run(module, [(x, y)])
    errs = errors_lib.errors(tflm.losses, tflm.params, losses, params)
    worst["max_rel_err_loss"] = max(worst["max_rel_err_loss"],
                                    errs["max_rel_err_loss"])
    if errs["max_rel_err_params"] >= worst["max_rel_err_params"]:
      worst.update(max_rel_err_params=errs["max_rel_err_params"],
                   worst_param=errs["worst_param"], worst_step=step)
  return worst


@dataclasses.dataclass(frozen=True)
class TrainParity:
  """What an export reports of its train-step check."""
  steps: int
  losses_tf: Tuple[float, ...]
  losses_tflm: Tuple[float, ...]
  max_rel_err_loss: float
  max_rel_err_params: float
  parity: str  # one of VERDICTS

  def to_dict(self) -> dict:
    return {"steps": self.steps, "parity": self.parity,
            "losses_tf": [round_figure(v) for v in self.losses_tf],
            "losses_tflm": [round_figure(v) for v in self.losses_tflm],
            "max_rel_err_loss": round_figure(self.max_rel_err_loss, 3),
            "max_rel_err_params": round_figure(self.max_rel_err_params, 3)}


def train_parity(lowered: LoweredModel, batches,
                 tolerance: float = DEFAULT_TOLERANCE,
                 seed: int = 0) -> TrainParity:
  """:func:`compare` without the arena, summarised for an export report."""
  result = compare(lowered, batches, arena=False, tolerance=tolerance,
                   seed=seed)
  return TrainParity(len(batches), tuple(float(v) for v in result["tf_losses"]),
                     tuple(float(v) for v in result["tflm_losses"]),
                     result["max_rel_err_loss"], result["max_rel_err_params"],
                     result["parity"])
