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

Weights: by default (``weights="auto"``) the model starts from the shipped
pretrained backbone of the same name when its configuration agrees with the
request (``tflite_tl.models.list_pretrained()``), rebuilt at the requested
resolution; otherwise from the zoo's seeded random initialisation.

Rounding and bifurcations. ReLU/ReLU6 masks make the train step
discontinuous: a pre-activation that lands within an ulp of 0 or 6 opens or
closes its mask depending on the order of a float32 sum, which TF and TFLM
(both float32, different kernels) need not share. After such a tie the two
trajectories follow different, equally correct branches and drift apart by
far more than rounding (e.g. mobilenet_v2 0.35 / tinytl_l / 32 px, seed 0,
with pointwise convs lowered to CONV_2D:
one ReLU6 input of block16 sits 1.5e-7 from its threshold in step 9, and
the losses of steps 10-20 differ by up to 1e-2). So the report also

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
  re-synchronises: before every step TFLM is given TF's current parameters
  (``write_params``) and runs that one step, and the step's loss and
  updated parameters are compared with TF's (``one_step``). This is the
  lowering's own error, step by step along TF's trajectory, free of the
  branch history; a wrong gradient shows up in every step.

``parity`` is ``"exact"`` (the unperturbed reference matches),
``"within_rounding"`` (the reference itself bifurcates under 1-ulp input
noise, and TFLM matches a perturbed run or every re-synchronised step) or
``"failed"``; ``passed`` is False only for ``"failed"`` (or a non-builtin
op).
"""
import dataclasses
from typing import Dict, Optional

import numpy as np

from tflite_tl.lower.builtins import NonBuiltinOpError
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.lowering import LoweredModel
from tflite_tl.lower.lowering import lower_model
from tflite_tl.lower.module import MOMENTUM_SUFFIX
from tflite_tl.lower.params import write_params
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
  # Small enough that SGD on a pretrained backbone with batch 2 is stable:
  # at 0.05 ft_full on mobilenet_v2 diverges (loss 2.4 -> 7.3 in five steps)
  # and a diverging trajectory amplifies any rounding difference.
  learning_rate: float = 0.01
  tolerance: float = DEFAULT_TOLERANCE
  weights: str = "auto"  # "auto", "pretrained" or "random"
  # Extra options of the method (e.g. tinytrain's memory_budget).
  method_options: Optional[Dict] = None


WEIGHT_CHOICES = ("auto", "pretrained", "random")
# One float32 ulp at 1.0: the size of a rounding difference in the inputs.
ULP_PERTURBATION = 2.0 ** -24
# TF runs on ulp-perturbed inputs that a TFLM run missing the unperturbed
# reference is also compared with (each tie is a coin flip per run).
PERTURBED_REFERENCES = 4
# Labelled samples per class handed to methods that select on the user's
# samples (tinytrain): seeded random images, like the verified batches.
SUPPORT_PER_CLASS = 4


def random_batches(seed: int, steps: int, batch: int, image_shape,
                   num_classes: int):
  """Seeded images in [0, 1] and int32 labels, one batch per step."""
  rs = np.random.RandomState(seed)
  return [(rs.rand(batch, *image_shape).astype(np.float32),
           rs.randint(0, num_classes, batch).astype(np.int32))
          for _ in range(steps)]


def _errors(losses, params, ref_losses, ref_params) -> Dict:
  """Max relative loss error, per-tensor parameter errors, worst tensor."""
  missing = sorted(set(ref_params) - set(params))
  if missing:
    raise RuntimeError(f"TFLM run exposed no value for variables {missing}.")
  loss_err = float(np.max(np.abs(np.asarray(losses) - ref_losses)
                          / np.maximum(np.abs(ref_losses), 1e-12)))
  param_errs = {
      n: float(np.abs(params[n] - v).max()
               / max(np.abs(v).max(), PARAM_FLOOR))
      for n, v in ref_params.items()}
  worst = max(param_errs, key=param_errs.get)
  return {"max_rel_err_loss": loss_err,
          "max_rel_err_params": param_errs[worst], "worst_param": worst,
          "worst_param_scale": float(np.abs(ref_params[worst]).max())}


def _tf_run(module, batches):
  losses = np.array([float(module.train_step(x, y)["loss"])
                     for x, y in batches])
  return losses, module.param_values()


def perturbed(batches, seed: int, relative: float = ULP_PERTURBATION):
  """``batches`` with every image entry scaled by 1 +- ``relative``."""
  rs = np.random.RandomState(seed + 1)
  return [((x * (1.0 + relative * rs.choice([-1.0, 1.0], x.shape)))
           .astype(np.float32), y) for x, y in batches]


def _within(errors: Dict, tolerance: float) -> bool:
  return (errors["max_rel_err_loss"] <= tolerance
          and errors["max_rel_err_params"] <= tolerance)


def _first_parting(losses, ref_losses, tolerance: float) -> Optional[int]:
  rel = np.abs(np.asarray(losses) - ref_losses) / np.maximum(
      np.abs(ref_losses), 1e-12)
  over = np.nonzero(rel > tolerance)[0]
  return int(over[0]) + 1 if over.size else None  # 1-based step number


def compare(lowered: LoweredModel, batches, arena: bool = True,
            tolerance: float = DEFAULT_TOLERANCE, seed: int = 0,
            perturbed_references: int = PERTURBED_REFERENCES) -> Dict:
  """Runs ``batches`` through TFLM and the TF reference and compares them
  (see the module docstring). The unperturbed TF reference runs last, so
  the module's variables end where it ends."""
  module = lowered.module
  variables = module.params + module.slots
  start = [v.numpy() for v in variables]

  def tf_run(data):
    for var, value in zip(variables, start):
      var.assign(value)
    return _tf_run(module, data)

  tflm = run_train_steps(lowered.train_tflite, batches, read_params=True,
                         measure_arena=arena)
  perturbed_runs = [tf_run(perturbed(batches, seed + k))
                    for k in range(max(1, perturbed_references))]
  tf_losses, tf_params = tf_run(batches)
  result = _errors(tflm.losses, tflm.params, tf_losses, tf_params)
  result.update(tf_losses=tf_losses, tflm_losses=tflm.losses,
                arena=tflm.arena)
  first = perturbed_runs[0]
  result["reference_sensitivity"] = _errors(first[0], first[1], tf_losses,
                                            tf_params)
  result["reference_bifurcation_step"] = _first_parting(
      first[0], tf_losses, tolerance)
  if _within(result, tolerance):
    result["parity"] = "exact"
    return result
  nearest = min(
      (dict(_errors(tflm.losses, tflm.params, losses, params), draw=k)
       for k, (losses, params) in enumerate(perturbed_runs)),
      key=lambda e: max(e["max_rel_err_loss"], e["max_rel_err_params"]))
  result["nearest_perturbed_reference"] = nearest
  reference_bifurcates = (
      result["reference_bifurcation_step"] is not None
      or not _within(result["reference_sensitivity"], tolerance))
  if _within(nearest, tolerance):
    result["parity"] = "within_rounding"
  elif reference_bifurcates:
    # Replays the unperturbed reference from the start, step by step.
    for var, value in zip(variables, start):
      var.assign(value)
    result["one_step"] = one_step_errors(lowered, batches)
    result["parity"] = ("within_rounding"
                        if _within(result["one_step"], tolerance)
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
                           [(x, y)], read_params=True)
    losses, params = _tf_run(module, [(x, y)])
    errors = _errors(tflm.losses, tflm.params, losses, params)
    worst["max_rel_err_loss"] = max(worst["max_rel_err_loss"],
                                    errors["max_rel_err_loss"])
    if errors["max_rel_err_params"] >= worst["max_rel_err_params"]:
      worst.update(max_rel_err_params=errors["max_rel_err_params"],
                   worst_param=errors["worst_param"], worst_step=step)
  return worst


def _pretrained_match(config: VerifyConfig) -> Optional[str]:
  """Why the shipped backbone ``config.model`` cannot serve ``config``
  (None when it can)."""
  from tflite_tl.models import list_pretrained  # pylint: disable=import-outside-toplevel
  from tflite_tl.models import pretrained_info  # pylint: disable=import-outside-toplevel
  if config.model not in list_pretrained():
    return (f"no shipped backbone is named {config.model!r} (shipped: "
            f"{', '.join(list_pretrained()) or 'none'})")
  record = pretrained_info(config.model)
  kwargs = record.get("builder_kwargs", {})
  if record.get("model") != config.model:
    return f"the shipped {config.model!r} is a {record.get('model')!r}"
  if int(kwargs.get("input_channels", 3)) != config.channels:
    return (f"the shipped backbone takes {kwargs.get('input_channels')} "
            f"input channels, not {config.channels}")
  wm = kwargs.get("width_multiplier")
  if config.width_multiplier is not None and (
      wm is None or abs(float(wm) - config.width_multiplier) > 1e-9):
    return (f"the shipped backbone has width multiplier {wm}, not "
            f"{config.width_multiplier}")
  return None


def build_model(config: VerifyConfig):
  """The model ``config`` asks for, with its method applied, and a
  description of the weights it starts from."""
  from tflite_tl.models import get_model  # pylint: disable=import-outside-toplevel
  from tflite_tl.models import load_pretrained  # pylint: disable=import-outside-toplevel
  from tflite_tl.models import pretrained_info  # pylint: disable=import-outside-toplevel
  from tflite_tl.rewrite import apply_method  # pylint: disable=import-outside-toplevel
  from tflite_tl.rewrite import method_needs_support  # pylint: disable=import-outside-toplevel
  from tflite_tl._compat import keras  # pylint: disable=import-outside-toplevel

  if config.weights not in WEIGHT_CHOICES:
    raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got "
                     f"{config.weights!r}.")
  # Seed first: zoo initialisers and new heads draw from it, so a report is
  # reproducible (same flags -> same model, data and figures).
  keras.utils.set_random_seed(config.seed)
  mismatch = (_pretrained_match(config) if config.weights != "random"
              else "random weights were asked for")
  if mismatch is None:
    backbone = load_pretrained(config.model, resolution=config.resolution)
    record = pretrained_info(config.model)
    weights = (f"pretrained {config.model} "
               f"({record.get('dataset')}, sha256 "
               f"{record.get('weights_sha256', '')[:12]})")
  elif config.weights == "pretrained":
    raise ValueError(f"--weights=pretrained: {mismatch}.")
  else:
    kwargs = dict(resolution=config.resolution,
                  input_channels=config.channels,
                  num_classes=config.num_classes)
    if config.width_multiplier is not None:
      kwargs["width_multiplier"] = config.width_multiplier
    backbone = get_model(config.model, **kwargs)
    weights = f"random (seed {config.seed}; {mismatch})"
  options = dict(config.method_options or {})
  if method_needs_support(config.method) and "support" not in options:
    rs = np.random.RandomState(config.seed + 2)
    n = SUPPORT_PER_CLASS * config.num_classes
    options["support"] = (
        rs.rand(n, *backbone.input_shape[1:]).astype(np.float32),
        np.arange(n) % config.num_classes)
    options.setdefault("batch_size", config.batch)
  model = apply_method(backbone, config.method,
                       num_classes=config.num_classes, **options)
  return model, weights


def verify(config: VerifyConfig) -> Dict:
  """Lowers ``config.model`` prepared with ``config.method`` and checks
  TF/TFLM parity. Returns the report dict (``passed`` tells the verdict)."""
  # Imported here: the zoo and the rewrites are only needed by this entry point.
  from tflite_tl.memory import training_memory  # pylint: disable=import-outside-toplevel
  from tflite_tl.rewrite import selection_of  # pylint: disable=import-outside-toplevel

  model, weights = build_model(config)
  report = {"model": config.model, "method": config.method,
            "resolution": config.resolution, "batch": config.batch,
            "steps": config.steps, "tolerance": config.tolerance,
            "weights": weights, "learning_rate": config.learning_rate,
            "seed": config.seed}
  try:
    lowered = lower_model(model, batch_size=config.batch,
                          learning_rate=config.learning_rate)
  except NonBuiltinOpError as e:
    report.update(builtin_only=False, error=str(e), passed=False)
    return report
  batches = random_batches(config.seed, config.steps, config.batch,
                           lowered.module.image_shape, config.num_classes)
  result = compare(lowered, batches, tolerance=config.tolerance,
                   seed=config.seed)
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
             "breakdown": dict(arena.breakdown), "source": arena.source},
      analytic={
          "activation_bytes": int(round(analytic.activation_bytes)),
          "trainable_param_bytes": int(round(analytic.trainable_param_bytes)),
          "activations_plus_trainable_params": int(round(
              analytic.activation_bytes + analytic.trainable_param_bytes)),
          "source": "modelled (analytic)"},
      flash_bytes={"train_tflite": len(lowered.train_tflite),
                   "infer_tflite": len(lowered.infer_tflite)},
      parity=result["parity"],
      reference_sensitivity={
          k: result["reference_sensitivity"][k]
          for k in ("max_rel_err_loss", "max_rel_err_params", "worst_param")},
      reference_bifurcation_step=result["reference_bifurcation_step"],
      losses={"tf": [float(v) for v in result["tf_losses"]],
              "tflm": [float(v) for v in result["tflm_losses"]]},
  )
  if "one_step" in result:
    report["one_step"] = result["one_step"]
  if "nearest_perturbed_reference" in result:
    nearest = result["nearest_perturbed_reference"]
    report["nearest_perturbed_reference"] = {
        k: nearest[k] for k in ("max_rel_err_loss", "max_rel_err_params",
                                "worst_param", "draw")}
  selection = selection_of(model)
  if selection is not None:
    report["selection"] = selection.to_dict()
  report["passed"] = report["parity"] != "failed"
  return report


def format_text(report: Dict) -> str:
  """A short human-readable summary of a verify report."""
  if not report.get("builtin_only", False):
    return f"FAIL: not builtin-only: {report.get('error')}"
  verdict = {"exact": "PASS", "within_rounding": "PASS (within rounding)",
             "failed": "FAIL"}[report["parity"]]
  sens = report["reference_sensitivity"]
  lines = [
      f"{verdict}: {report['model']} / {report['method']} "
      f"({report['resolution']} px, batch {report['batch']}, "
      f"{report['steps']} steps)",
      f"  max rel err loss   {report['max_rel_err_loss']:.3g}",
      f"  max rel err params {report['max_rel_err_params']:.3g} "
      f"(worst {report['worst_param']['name']})",
      f"  TF vs TF on 1-ulp-perturbed inputs: loss "
      f"{sens['max_rel_err_loss']:.3g}, params "
      f"{sens['max_rel_err_params']:.3g}",
  ]
  nearest = report.get("nearest_perturbed_reference")
  if nearest:
    lines.append(
        f"  TFLM vs nearest perturbed TF run: loss "
        f"{nearest['max_rel_err_loss']:.3g}, params "
        f"{nearest['max_rel_err_params']:.3g}")
  one_step = report.get("one_step")
  if one_step:
    lines.append(
        f"  TFLM steps re-synchronised to TF (worst of "
        f"{report['steps']}): loss {one_step['max_rel_err_loss']:.3g}, "
        f"params {one_step['max_rel_err_params']:.3g}")
  if report["reference_bifurcation_step"] is not None:
    lines.append(
        f"  note: the TF reference itself parts from its 1-ulp-perturbed "
        f"twin at step {report['reference_bifurcation_step']} (a ReLU tie "
        "decided by rounding); errors after it measure the branch taken, "
        "not the lowering.")
  lines += [
      f"  weights            {report['weights']}",
      f"  arena (measured)   total {report['arena']['total']} B, head "
      f"{report['arena']['head']} B, tail {report['arena']['tail']} B",
      f"  analytic           "
      f"{report['analytic']['activations_plus_trainable_params']} B "
      "(activations x batch + trainable params)",
      f"  ops                {report['ops']}",
  ]
  return "\n".join(lines)
