"""``python -m export.verify``'s check: a zoo model, a method, N train steps
in TF and in the real TFLM interpreter on seeded random data, one report.

Weights: by default (``weights="auto"``) the model starts from the shipped
pretrained backbone of the same name when its configuration agrees with the
request (``tflite_tl.models.list_pretrained()``), rebuilt at the requested
resolution; otherwise from the zoo's seeded random initialisation.

The comparison and its verdict (``exact``, ``within_rounding``, ``failed``)
are :func:`tflite_tl.verify.train_step.compare`'s; ``passed`` is False only
for ``"failed"`` or a non-builtin op.
"""
import dataclasses
from typing import Dict, List, Optional

import numpy as np

from tflite_tl import ranges
from tflite_tl._compat import keras
from tflite_tl.flatbuffer import lifetimes
from tflite_tl.lower import INT8_CHUNK_ELEMENTS
from tflite_tl.lower import NonBuiltinOpError
from tflite_tl.lower import lower_model
from tflite_tl.lower import op_counts
from tflite_tl.memory import training_memory
from tflite_tl.models import get_model
from tflite_tl.models import is_model_path
from tflite_tl.models import list_pretrained
from tflite_tl.models import load_pretrained
from tflite_tl.models import pretrained_info
from tflite_tl.models import read_model_file
from tflite_tl.rewrite import apply_method
from tflite_tl.rewrite import method_needs_support
from tflite_tl.rewrite import selection_of
from tflite_tl.verify.train_step import DEFAULT_TOLERANCE
from tflite_tl.verify.train_step import compare
from tflite_tl.verify.train_step import random_batches

WEIGHT_CHOICES = ("auto", "pretrained", "random")
# Labelled samples per class handed to methods that select on the user's
# samples (tinytrain): seeded random images, like the verified batches.
SUPPORT_PER_CLASS = 4


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
  # The lowering: lower_model's kernels ("builtin"/"tl") and precision
  # ("float"/"int8"); qas for the tl flavor's int8 updates.
  kernels: str = "builtin"
  precision: str = "float"
  qas: bool = True
  # Builtin int8: row-block size of rebuilt FULLY_CONNECTED weights.
  int8_chunk_elements: Optional[int] = INT8_CHUNK_ELEMENTS
  # Extra options of the method (e.g. tinytrain's memory_budget).
  method_options: Optional[Dict] = None


def _pretrained_match(config: VerifyConfig) -> Optional[str]:
  """Why the shipped backbone ``config.model`` cannot serve ``config``
  (None when it can)."""
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

  if config.weights not in WEIGHT_CHOICES:
    raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got "
                     f"{config.weights!r}.")
  # Seed first: zoo initialisers and new heads draw from it, so a report is
  # reproducible (same flags -> same model, data and figures).
  keras.utils.set_random_seed(config.seed)
  if is_model_path(config.model):
    # Same input contract as the export: images in [0, 1].
    loaded = read_model_file(config.model, config.resolution,
                             unit_range_input=True)
    model = apply_method(loaded.model, config.method,
                         num_classes=config.num_classes)
    return model, " ".join([f"model file {config.model}", *loaded.notes])
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


def check_config(config: VerifyConfig) -> None:
  """Raises ranges.FlagError (named as the CLI's flag) for a value out of
  range, before any model is built."""
  ranges.integer_in("resolution", config.resolution, 8, 1024, " pixels")
  ranges.integer_in("batch", config.batch, 1, 256)
  ranges.integer_in("steps", config.steps, 1,
                    note=" (train steps compared)")
  ranges.integer_in("channels", config.channels, 1, 3,
                    " (1 gray, 3 RGB)")
  if config.channels == 2:
    raise ranges.FlagError("--channels must be 1 (gray) or 3 (RGB), got 2.")
  ranges.integer_in("num_classes", config.num_classes, 2,
                    note=" (a classifier needs two classes or more)")
  ranges.integer_in("seed", config.seed, 0, 2**32 - 1)
  ranges.positive("learning_rate", config.learning_rate, " (e.g. 0.01)")
  ranges.positive("tolerance", config.tolerance, " (e.g. 1e-4)")
  if config.width_multiplier is not None:
    ranges.positive("width_multiplier", config.width_multiplier,
                    " (e.g. 0.35)")


def verify(config: VerifyConfig) -> Dict:
  """Lowers ``config.model`` prepared with ``config.method`` and checks
  TF/TFLM parity. Returns the report dict (``passed`` tells the verdict)."""
  check_config(config)

  model, weights = build_model(config)
  report = {"model": config.model, "method": config.method,
            "resolution": int(model.inputs[0].shape[1]),
            "batch": config.batch,
            "steps": config.steps, "tolerance": config.tolerance,
            "weights": weights, "learning_rate": config.learning_rate,
            "seed": config.seed, "kernels": config.kernels,
            "precision": config.precision}
  if config.precision == "int8" and config.kernels == "tl":
    report["qas"] = config.qas
  if config.precision == "int8" and config.kernels == "builtin":
    report["int8_chunk_elements"] = config.int8_chunk_elements
  image_shape = [int(d) for d in model.inputs[0].shape[1:]]
  batches = random_batches(config.seed, config.steps, config.batch,
                           image_shape, config.num_classes)
  try:
    lowered = lower_model(
        model, batch_size=config.batch, learning_rate=config.learning_rate,
        kernels=config.kernels, precision=config.precision, qas=config.qas,
        int8_chunk_elements=config.int8_chunk_elements,
        # int8 scales from the step's own images (parity, not accuracy).
        calibration_images=np.concatenate([x for x, _ in batches]))
  except NonBuiltinOpError as e:
    report.update(builtin_only=False, error=str(e), passed=False)
    return report
  result = compare(lowered, batches, tolerance=config.tolerance,
                   seed=config.seed)
  arena = result["arena"]
  analytic = training_memory(model, batch_size=config.batch)
  report.update(
      builtin_only=config.kernels == "builtin",
      ops=op_counts(lowered.train_tflite),
      max_rel_err_loss=result["max_rel_err_loss"],
      max_rel_err_params=result["max_rel_err_params"],
      worst_param={"name": result["worst_param"],
                   "max_abs": result["worst_param_scale"]},
      arena={"total": arena.total, "head": arena.head, "tail": arena.tail,
             "breakdown": dict(arena.breakdown), "source": arena.source},
      # What the head holds at its peak (modelled from tensor lifetimes).
      head_peak=lifetimes.live_profile(lowered.train_tflite).to_dict(),
      analytic={
          "activation_bytes": int(round(analytic.activation_bytes)),
          "trainable_param_bytes": int(round(analytic.trainable_param_bytes)),
          "activations_plus_trainable_params": int(round(
              analytic.activation_bytes + analytic.trainable_param_bytes)),
          "source": "modelled (analytic)"},
      flash_bytes={"train_tflite": len(lowered.train_tflite),
                   "predict_tflite": len(lowered.predict_tflite)},
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
  if lowered.int8_stats is not None:
    report["int8_weights"] = dataclasses.asdict(lowered.int8_stats)
  selection = selection_of(model)
  if selection is not None:
    report["selection"] = selection.to_dict()
  report["passed"] = report["parity"] != "failed"
  return report


def _head_peak_lines(report: Dict) -> List[str]:
  peak = report.get("head_peak")
  if not peak or not peak["at_peak"]:
    return []
  lines = [f"  head peak (modelled) {peak['peak_bytes']} B alive at op "
           f"{peak['peak_op']} ({peak['peak_op_name']}) of "
           f"{peak['operators']}; largest:"]
  for t in peak["at_peak"][:4]:
    lines.append(f"    {t['name']} {t['shape']} {t['dtype'].lower()} "
                 f"{t['bytes']} B, ops {t['first']}-{t['last']}")
  return lines


def format_text(report: Dict) -> str:
  """A short human-readable summary of a verify report."""
  if "error" in report:
    return f"FAIL: not builtin-only: {report['error']}"
  verdict = {"exact": "PASS", "within_rounding": "PASS (within rounding)",
             "failed": "FAIL"}[report["parity"]]
  sens = report["reference_sensitivity"]
  lines = [
      f"{verdict}: {report['model']} / {report['method']} "
      f"({report['resolution']} px, batch {report['batch']}, "
      f"{report['steps']} steps, kernels {report.get('kernels', 'builtin')}, "
      f"{report.get('precision', 'float')})",
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
      *_head_peak_lines(report),
      f"  analytic           "
      f"{report['analytic']['activations_plus_trainable_params']} B "
      "(activations x batch + trainable params)",
      f"  ops                {report['ops']}",
  ]
  return "\n".join(lines)
