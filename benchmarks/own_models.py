"""Own models: train-step parity and arena of keras.applications networks
and a plain Sequential CNN, loaded from model files as a user's would be.

  python -m benchmarks.own_models --models_dir=out/own_models \\
      --reports_dir=benchmarks/results/own_models

For each model this writes a tf-keras model file (once; seeded random
weights, BatchNorm statistics calibrated on seeded random images so that the
network has a trained-like scale, see tflite_tl.models.calibrate), then runs
`python -m export.verify --model=FILE --method=M --resolution=R` per method
(a separate process each, its JSON report kept in --reports_dir; a re-run
reuses them) and prints one markdown table. Parity verdicts are those of
export.verify (20 steps TF vs TFLM); arenas are measured (TFLM recording
allocator); the analytic column is modelled (tflite_tl.memory). Nothing is
downloaded: keras.applications builds with weights=None.
"""
import dataclasses
import os
from typing import Callable, Dict, List

from absl import app
from absl import flags
import numpy as np

from benchmarks.parity_table import parity_cell
from benchmarks.parity_table import run_report
from tflite_tl._compat import keras
from tflite_tl.models import calibrate_batch_norm

METHODS = ["ft_last", "tinytl_b", "tinytl_l", "tinytl_lb", "ft_norm_last",
           "ft_full"]


@dataclasses.dataclass(frozen=True)
class OwnModel:
  """A user-style model: how to build it, the file it is saved to, the pixel
  range its own input expects, and the resolution it is verified at."""
  build: Callable[[], keras.Model]
  file_name: str
  pixel_scale: float
  resolution: int


def _sequential_cnn():
  return keras.Sequential([
      keras.Input((28, 28, 1)),
      keras.layers.Conv2D(16, 3, activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Conv2D(32, 3, activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Flatten(),
      keras.layers.Dropout(0.5),
      keras.layers.Dense(10, activation="softmax"),
  ], name="sequential_cnn")


# Saved at keras.applications' own sizes and verified at 32 px (rebuilt by
# the loader): the smallest input keras.applications accepts, to keep the
# CPU time of 20 TFLM steps low. Each format of the loader is used once.
MODELS: Dict[str, OwnModel] = {
    "mobilenet_v2_0.35": OwnModel(
        lambda: keras.applications.MobileNetV2(
            input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10),
        "mobilenet_v2_0.35.keras", 1.0, 32),
    "mobilenet_v3_small_0.75": OwnModel(
        lambda: keras.applications.MobileNetV3Small(
            input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=10),
        "mobilenet_v3_small_0.75.h5", 255.0, 32),
    "mobilenet_v3_large_0.75": OwnModel(
        lambda: keras.applications.MobileNetV3Large(
            input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=10),
        "mobilenet_v3_large_0.75_savedmodel", 255.0, 32),
    "efficientnet_b0": OwnModel(
        lambda: keras.applications.EfficientNetB0(
            input_shape=(96, 96, 3), weights=None, classes=10),
        "efficientnet_b0.keras", 255.0, 32),
    "sequential_cnn": OwnModel(_sequential_cnn, "sequential_cnn.keras", 1.0,
                               28),
}

_MODELS = flags.DEFINE_list("models", list(MODELS), "Models, one table block "
                            "each: " + ", ".join(MODELS) + ".")
_METHODS = flags.DEFINE_list("methods", METHODS, "Methods, one row each.")
_BATCH = flags.DEFINE_integer("batch", 2, "Batch size of the train step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Steps compared per run.")
_MODELS_DIR = flags.DEFINE_string("models_dir", "out/own_models",
                                  "Where the model files are written.")
_REPORTS_DIR = flags.DEFINE_string(
    "reports_dir", "benchmarks/results/own_models",
    "Where each run's JSON report is kept.")


def write_model(name: str, directory: str, seed: int = 0) -> str:
  """Writes model ``name`` (seeded, BN calibrated) once; returns its path."""
  spec = MODELS[name]
  path = os.path.join(directory, spec.file_name)
  if os.path.exists(path):
    return path
  os.makedirs(directory, exist_ok=True)
  keras.utils.set_random_seed(seed)
  model = spec.build()
  shape = [64] + [int(d) for d in model.inputs[0].shape[1:]]
  images = np.random.RandomState(seed).rand(*shape).astype(np.float32)
  calibrate_batch_norm(model, images * spec.pixel_scale)
  model.save(path)
  return path


def table(rows: List[Dict]) -> str:
  """One markdown table for reports of several models and methods."""
  lines = ["| model file | method | px | parity | free-run rel err (loss / "
           "params) "
           "| arena measured (B) | analytic act.+trainable (B) "
           "| train.tflite (B) |",
           "| --- | --- | ---: | --- | --- | ---: | ---: | ---: |"]
  for r in rows:
    name = os.path.basename(os.path.normpath(r["model"]))
    if r.get("error") and not r.get("builtin_only"):
      why = r["error"].split(". ")[0].rstrip(".")
      lines.append(f"| {name} | {r['method']} | {r.get('resolution', '')} "
                   f"| not applicable: {why} | | | | |")
      continue
    parity = parity_cell(r)
    lines.append(
        f"| {name} | {r['method']} | {r['resolution']} | {parity} "
        f"| {r['max_rel_err_loss']:.1e} / {r['max_rel_err_params']:.1e} "
        f"| {r['arena']['total']:,} "
        f"| {r['analytic']['activations_plus_trainable_params']:,} "
        f"| {r['flash_bytes']['train_tflite']:,} |")
  return "\n".join(lines)


def main(argv):
  del argv
  rows = []
  for name in _MODELS.value:
    if name not in MODELS:
      raise app.UsageError(f"Unknown model {name!r}; known: "
                           f"{', '.join(MODELS)}.")
    path = write_model(name, _MODELS_DIR.value)
    resolution = MODELS[name].resolution
    for method in _METHODS.value:
      args = [f"--model={path}", f"--method={method}",
              f"--resolution={resolution}", f"--batch={_BATCH.value}",
              f"--steps={_STEPS.value}"]
      report = os.path.join(_REPORTS_DIR.value,
                            f"{name}_{method}_{resolution}px.json")
      rows.append(run_report(report, args, allow_failure=True))
  print(table(rows))


if __name__ == "__main__":
  app.run(main)
