"""On-device training of an export, measured in TFLM, over its settings.

  python -m benchmarks.device_training --export=out/nano33ble \\
      --learning_rates=0.001,0.003,0.01 --samples=16,42 --epochs=1,5 \\
      --held_out=500

Rebuilds the export's model with its exported parameters, lowers the train
step at each on-device learning rate (the export's batch and momentum), and
runs the check of REPORT.md (``tflite_tl.verify.on_device``: the app's
``T<epochs>`` on a buffer of N test images, train.tflite in TFLM) for every
buffer size and epoch count, with the same test-split draw as the export.
Prints a markdown table of held-out and buffer accuracy before and after;
every figure comes from the device's own train step.
"""
import json
import math
import os
import sys
from typing import Dict, List, Sequence

import numpy as np
from absl import app
from absl import flags

from tflite_tl import console
from tflite_tl import data as data_lib
from tflite_tl import lower
from tflite_tl import rewrite
from tflite_tl._compat import keras
from tflite_tl.flatbuffer.integrity import check_intact
from tflite_tl.lower.module import MOMENTUM_SUFFIX
from tflite_tl.pipeline.backbone import load_backbone
from tflite_tl.verify import on_device

_EXPORT = flags.DEFINE_string("export", None, "An export directory "
                              "(python -m export --out=DIR).", required=True)
_LRS = flags.DEFINE_list("learning_rates", ["0.001", "0.003", "0.01"],
                         "On-device SGD rates.")
_SAMPLES = flags.DEFINE_list("samples", ["16", "42"], "Buffer sizes.")
_EPOCHS = flags.DEFINE_list("epochs", ["1", "5"], "Epochs (T<epochs>).")
_HELD_OUT = flags.DEFINE_integer("held_out", 500, "Held-out test images.")


def exported_model(report: Dict, train_tflite: bytes):
  """The export's rewritten Keras model carrying the exported parameters."""
  cfg = report["config"]
  keras.utils.set_random_seed(cfg["seed"])
  backbone, _ = load_backbone(cfg["model"], cfg["pretrained"],
                              cfg["resolution"])
  model = rewrite.apply_method(backbone, cfg["method"],
                               num_classes=report["data"]["num_classes"],
                               seed=cfg["seed"])
  params = {n: v for n, v in lower.read_params(train_tflite).items()
            if not n.endswith(MOMENTUM_SUFFIX)}
  lower.assign_to_keras(model, params)
  return model


def read_export(export_dir: str):
  """(report dict, train.tflite bytes) of an export; ValueError naming the
  directory and the fix when it is not one."""
  fix = "pass a directory written by `python -m export --out=DIR`"
  if not os.path.isdir(export_dir):
    raise ValueError(f"--export={export_dir}: no such directory; {fix}.")
  path = os.path.join(export_dir, "report.json")
  if not os.path.isfile(path):
    raise ValueError(f"--export={export_dir}: no report.json, so not an "
                     f"export; {fix}.")
  try:
    with open(path, encoding="utf-8") as f:
      report = json.load(f)
    config = report["config"]
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"--export={export_dir}: report.json is not an "
                     f"export's report ({type(e).__name__}: {e}); {fix}."
                     ) from None
  if not isinstance(config, dict):
    raise ValueError(f"--export={export_dir}: report.json has no config; "
                     f"{fix}.")
  path = os.path.join(export_dir, "train.tflite")
  if not os.path.isfile(path):
    raise ValueError(f"--export={export_dir}: train.tflite is missing; {fix}.")
  with open(path, "rb") as f:
    train_tflite = f.read()
  check_intact(train_tflite, path)
  return report, train_tflite


def _numbers(flag: str, values: Sequence[str], kind, low,
             strict: bool = False) -> List:
  """``values`` parsed as ``kind``, each finite and >= ``low`` (> when
  ``strict``); ValueError naming the flag otherwise."""
  what = "an integer" if kind is int else "a number"
  bound = f"{'>' if strict else '>='} {low}"
  try:
    numbers = [kind(v) for v in values]
  except ValueError:
    numbers = None
  if not numbers or any(not math.isfinite(n) or n < low or (strict and n == low)
                        for n in numbers):
    raise ValueError(f"--{flag}={','.join(values)}: every entry must be "
                     f"{what} {bound}.")
  return numbers


def measure(export_dir: str, learning_rates: Sequence[float],
            samples: Sequence[int], epochs: Sequence[int],
            held_out: int) -> List[Dict]:
  report, train_tflite = read_export(export_dir)
  model = exported_model(report, train_tflite)
  cfg = report["config"]
  data = data_lib.load(cfg["dataset"], resolution=cfg["resolution"],
                       channels=report["data"]["channels"], seed=cfg["seed"],
                       max_per_class=cfg["samples_per_class"])
  x_test = np.asarray(data.x_test, np.float32)
  rows = []
  for lr in learning_rates:
    lowered = lower.lower_model(model, batch_size=cfg["batch"],
                                learning_rate=lr, momentum=cfg["momentum"],
                                label_smoothing=cfg["label_smoothing"])
    for n in samples:
      buffer, held = on_device.split_test_images(data.y_test, cfg["seed"], n,
                                                 held_out)
      for e in epochs:
        result = on_device.device_training(
            lowered.train_tflite, lowered.predict_tflite,
            (x_test[buffer], data.y_test[buffer]),
            (x_test[held], data.y_test[held]), batch=cfg["batch"], epochs=e)
        rows.append(dict(result.to_dict(), learning_rate=lr))
        print(f"lr {lr} samples {n} epochs {e}: held-out "
              f"{result.accuracy_before:.3f} -> {result.accuracy_after:.3f}",
              file=sys.stderr)
  return rows


def markdown(rows: Sequence[Dict]) -> str:
  lines = ["| on-device lr | samples | epochs | held-out before | after | "
           "buffer before | after | loss first / last epoch |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
  for r in rows:
    lines.append(
        f"| {r['learning_rate']:g} | {r['samples']} | {r['epochs']} | "
        f"{100 * r['accuracy_before']:.1f} % | "
        f"{100 * r['accuracy_after']:.1f} % | "
        f"{100 * r['buffer_accuracy_before']:.1f} % | "
        f"{100 * r['buffer_accuracy_after']:.1f} % | "
        f"{r['epoch_losses'][0]:.3f} / {r['epoch_losses'][-1]:.3f} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  try:
    rows = measure(_EXPORT.value,
                   _numbers("learning_rates", _LRS.value, float, 0, True),
                   _numbers("samples", _SAMPLES.value, int, 1),
                   _numbers("epochs", _EPOCHS.value, int, 1),
                   _numbers("held_out", [str(_HELD_OUT.value)], int, 1)[0])
  except console.USER_ERRORS as e:
    console.report_error("device_training", e, sys.stderr)
    return 1
  print(markdown(rows), end="")
  return 0


if __name__ == "__main__":
  app.run(main)
