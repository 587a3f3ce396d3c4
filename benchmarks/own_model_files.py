"""The model files of benchmarks/own_models.py (free of absl flags, so tests
and other tools can import it): user-style tf-keras models, how they are
written, and the table of their export.verify reports."""
import dataclasses
import os
from typing import Callable, Dict, List

import numpy as np

from benchmarks.parity_table import parity_cell
from tflite_tl._compat import keras
from tflite_tl.models import calibrate_batch_norm


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
