"""Parity of the lowered train step: N steps in TF and in the real TFLM
interpreter on the same (seeded random) data.

Relative errors: per step, |loss_TFLM - loss_TF| / |loss_TF|; per parameter
tensor after the last step, max|p_TFLM - p_TF| / max(max|p_TF|, PARAM_FLOOR).
The error is taken relative to the tensor's largest entry so that near-zero
entries do not turn rounding into huge ratios, and the scale is floored at
PARAM_FLOOR (1e-3) because a tensor that stayed near zero (e.g. the bias of
a layer behind a mostly-closed ReLU, max |p| ~ 1e-6 after 20 steps) has only
float32 rounding left to compare: its differences are judged as absolute
errors of tolerance * 1e-3. The maxima over steps and tensors are reported,
and the worst tensor is named.
"""
import dataclasses
from typing import Dict, Optional

import numpy as np

from tflite_tl.lower.builtins import NonBuiltinOpError
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.lowering import LoweredModel
from tflite_tl.lower.lowering import lower_model
from tflite_tl.tflm.runner import run_train_steps

DEFAULT_TOLERANCE = 1e-4
PARAM_FLOOR = 1e-3


@dataclasses.dataclass
class VerifyConfig:
  model: str = "tiny"
  method: str = "tinytl_lb"
  resolution: int = 32
  batch: int = 2
  steps: int = 20
  width_multiplier: Optional[float] = None
  channels: int = 1
  num_classes: int = 10
  seed: int = 0
  learning_rate: float = 0.05
  tolerance: float = DEFAULT_TOLERANCE


def random_batches(seed: int, steps: int, batch: int, image_shape,
                   num_classes: int):
  """Seeded images in [0, 1] and int32 labels, one batch per step."""
  rs = np.random.RandomState(seed)
  return [(rs.rand(batch, *image_shape).astype(np.float32),
           rs.randint(0, num_classes, batch).astype(np.int32))
          for _ in range(steps)]


def compare(lowered: LoweredModel, batches, arena: bool = True) -> Dict:
  """Runs ``batches`` through TFLM and through the TF reference (in that
  order: the TF run updates the module's variables) and compares them."""
  tflm = run_train_steps(lowered.train_tflite, batches, read_params=True,
                         measure_arena=arena)
  tf_losses = np.array(
      [float(lowered.module.train_step(x, y)["loss"]) for x, y in batches])
  tf_params = lowered.module.param_values()
  missing = sorted(set(tf_params) - set(tflm.params))
  if missing:
    raise RuntimeError(f"TFLM run exposed no value for variables {missing}.")
  loss_err = float(np.max(np.abs(tflm.losses - tf_losses)
                          / np.maximum(np.abs(tf_losses), 1e-12)))
  param_errs = {
      n: float(np.abs(tflm.params[n] - v).max()
               / max(np.abs(v).max(), PARAM_FLOOR))
      for n, v in tf_params.items()}
  worst = max(param_errs, key=param_errs.get)
  return {"tf_losses": tf_losses, "tflm_losses": tflm.losses,
          "max_rel_err_loss": loss_err,
          "max_rel_err_params": param_errs[worst], "worst_param": worst,
          "worst_param_scale": float(np.abs(tf_params[worst]).max()),
          "arena": tflm.arena}


def verify(config: VerifyConfig) -> Dict:
  """Lowers ``config.model`` prepared with ``config.method`` and checks
  TF/TFLM parity. Returns the report dict (``passed`` tells the verdict)."""
  # Imported here: the zoo and the rewrites are only needed by this entry point.
  from tflite_tl.memory import training_memory  # pylint: disable=import-outside-toplevel
  from tflite_tl.models import get_model  # pylint: disable=import-outside-toplevel
  from tflite_tl.rewrite import apply_method  # pylint: disable=import-outside-toplevel
  from tflite_tl._compat import keras  # pylint: disable=import-outside-toplevel

  # Zoo models start from random weights: seed them too, so a report is
  # reproducible (same flags -> same model, data and figures).
  keras.utils.set_random_seed(config.seed)

  kwargs = dict(resolution=config.resolution, input_channels=config.channels,
                num_classes=config.num_classes)
  if config.width_multiplier is not None:
    kwargs["width_multiplier"] = config.width_multiplier
  model = apply_method(get_model(config.model, **kwargs), config.method,
                       num_classes=config.num_classes)
  report = {"model": config.model, "method": config.method,
            "resolution": config.resolution, "batch": config.batch,
            "steps": config.steps, "tolerance": config.tolerance}
  try:
    lowered = lower_model(model, batch_size=config.batch,
                          learning_rate=config.learning_rate)
  except NonBuiltinOpError as e:
    report.update(builtin_only=False, error=str(e), passed=False)
    return report
  batches = random_batches(config.seed, config.steps, config.batch,
                           lowered.module.image_shape, config.num_classes)
  result = compare(lowered, batches)
  arena = result["arena"]
  analytic = training_memory(model, batch_size=config.batch)
  report.update(
      builtin_only=True,
      ops=op_counts(lowered.train_tflite),
      max_rel_err_loss=result["max_rel_err_loss"],
      max_rel_err_params=result["max_rel_err_params"],
      worst_param={"name": result["worst_param"],
                   "max_abs": result["worst_param_scale"]},
      arena={"total": arena.total, "head": arena.head, "tail": arena.tail,
             "source": arena.source},
      analytic={
          "activation_bytes": int(round(analytic.activation_bytes)),
          "trainable_param_bytes": int(round(analytic.trainable_param_bytes)),
          "activations_plus_trainable_params": int(round(
              analytic.activation_bytes + analytic.trainable_param_bytes)),
          "source": "modelled (analytic)"},
      flash_bytes={"train_tflite": len(lowered.train_tflite),
                   "infer_tflite": len(lowered.infer_tflite)},
      losses={"tf": [float(v) for v in result["tf_losses"]],
              "tflm": [float(v) for v in result["tflm_losses"]]},
  )
  report["passed"] = bool(
      report["max_rel_err_loss"] <= config.tolerance
      and report["max_rel_err_params"] <= config.tolerance)
  return report


def format_text(report: Dict) -> str:
  """A short human-readable summary of a verify report."""
  if not report.get("builtin_only", False):
    return f"FAIL: not builtin-only: {report.get('error')}"
  verdict = "PASS" if report["passed"] else "FAIL"
  return "\n".join([
      f"{verdict}: {report['model']} / {report['method']} "
      f"({report['resolution']} px, batch {report['batch']}, "
      f"{report['steps']} steps)",
      f"  max rel err loss   {report['max_rel_err_loss']:.3g}",
      f"  max rel err params {report['max_rel_err_params']:.3g}",
      f"  arena (measured)   total {report['arena']['total']} B, head "
      f"{report['arena']['head']} B, tail {report['arena']['tail']} B",
      f"  analytic           {report['analytic']['activations_plus_trainable_params']} B "
      "(activations x batch + trainable params)",
      f"  ops                {report['ops']}",
  ])
