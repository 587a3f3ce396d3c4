"""The one error measure of every TF-vs-TFLM comparison.

Relative error of a tensor (a loss, a parameter tensor, a batch of logits):

  max |actual - expected| / max(max |expected|, SCALE_FLOOR)

It is taken relative to the tensor's largest entry so that near-zero
entries do not turn rounding into huge ratios, and the scale is floored at
SCALE_FLOOR (1e-3) because a tensor that stayed near zero (e.g. the bias of
a layer behind a mostly-closed ReLU, max |p| ~ 1e-6 after 20 steps) has only
float32 rounding left to compare: its differences are judged as absolute
errors of tolerance * 1e-3. Losses are compared per step, parameters per
tensor after the last step; the maxima are reported and the worst tensor is
named. Computed in float64, so the measure adds no rounding of its own.
"""
from typing import Dict, Mapping, Sequence

import numpy as np

SCALE_FLOOR = 1e-3


def rel_err(actual, expected, floor: float = SCALE_FLOOR) -> float:
  """max|actual - expected| / max(max|expected|, floor); 0 for empty."""
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  if actual.shape != expected.shape:
    raise ValueError(f"Cannot compare shapes {actual.shape} and "
                     f"{expected.shape}.")
  if not expected.size:
    return 0.0
  scale = max(float(np.max(np.abs(expected))), floor)
  return float(np.max(np.abs(actual - expected))) / scale


def loss_error(losses: Sequence[float], ref_losses: Sequence[float]) -> float:
  """Worst per-step relative error of the losses."""
  if len(losses) != len(ref_losses):
    raise ValueError(f"{len(losses)} losses against {len(ref_losses)} "
                     "reference losses.")
  return max((rel_err(a, b) for a, b in zip(losses, ref_losses)),
             default=0.0)


def errors(losses: Sequence[float], params: Mapping[str, np.ndarray],
           ref_losses: Sequence[float],
           ref_params: Mapping[str, np.ndarray]) -> Dict:
  """Loss and parameter errors of a run against a reference run.

  Returns ``max_rel_err_loss``, ``max_rel_err_params``, ``worst_param`` (the
  tensor with the largest error) and ``worst_param_scale`` (its max |p|).

  Raises:
    RuntimeError: the run lacks a parameter of the reference.
  """
  missing = sorted(set(ref_params) - set(params))
  if missing:
    raise RuntimeError(f"TFLM run exposed no value for variables {missing}.")
  param_errs = {n: rel_err(params[n], v) for n, v in ref_params.items()}
  worst = max(param_errs, key=param_errs.get)
  return {"max_rel_err_loss": loss_error(losses, ref_losses),
          "max_rel_err_params": param_errs[worst], "worst_param": worst,
          "worst_param_scale": float(np.abs(ref_params[worst]).max())}


def round_figure(x: float, digits: int = 6) -> float:
  """``x`` to ``digits`` significant digits, so that reports stay
  byte-stable."""
  return float(f"{x:.{digits}g}")


def within(errs: Mapping, tolerance: float) -> bool:
  """Whether both the loss and the parameter errors are within tolerance."""
  return (errs["max_rel_err_loss"] <= tolerance
          and errs["max_rel_err_params"] <= tolerance)
