"""The whole export: load -> rewrite -> fine-tune -> lower -> verify -> package.

``run_export(ExportConfig(...))`` is what ``python -m export`` calls. Inputs
are validated before any heavy work; the device fit is checked as soon as the
arenas are measured; the output directory appears only when everything
succeeded (``tflite_tl.atomic``), otherwise nothing is written.

Stages, each a function of the one before:
  load       backbone (shipped pretrained or zoo) and the target dataset
  rewrite    the transfer-learning method and a new head
  fine-tune  host training of the method's trainable weights
  lower      int8 inference model, then the train step and predict model at
             each candidate batch, their arenas measured in TFLM, the largest
             batch that fits the board kept
  verify     train step, predict and int8 models against TF in TFLM
  package    Arduino library, ESP-IDF component, reports, written atomically
"""
import dataclasses
import logging
import os
from typing import Any, Dict, Tuple

import numpy as np

from tflite_tl import atomic
from tflite_tl import data as data_lib
from tflite_tl import devices as devices_lib
from tflite_tl import flatbuffer
from tflite_tl import lower
from tflite_tl import memory
from tflite_tl import models as models_lib
from tflite_tl import rewrite as rewrite_lib
from tflite_tl import tflm
from tflite_tl import train as train_lib
from tflite_tl._compat import keras
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import package
from tflite_tl.firmware import report as report_lib
from tflite_tl.lower import quantize
from tflite_tl.pipeline import summary
from tflite_tl.pipeline.backbone import image_shape
from tflite_tl.pipeline.backbone import load_backbone
from tflite_tl.pipeline.config import BATCH_CANDIDATES
from tflite_tl.pipeline.config import OUTPUT_MARKER
from tflite_tl.pipeline.config import ExportConfig
from tflite_tl.pipeline.config import ExportError
from tflite_tl.pipeline.config import validate
from tflite_tl.tflm.runner import train_inputs_order
from tflite_tl.verify import inference as inference_check
from tflite_tl.verify import train_step as train_check

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExportResult:
  out: str
  report: Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _Lowered:
  """The lower stage's result at the chosen batch."""
  batch: int
  lowered: lower.LoweredModel
  arenas: Dict[str, tflm.ArenaReport]
  spec: package.BuildSpec
  fit: fit_lib.FitResult


def _build_spec(cfg, device, model_name, lowered, int8, arenas, shape,
                batch, class_names) -> package.BuildSpec:
  images_idx, labels_idx = train_inputs_order(lowered.train_tflite)
  return package.BuildSpec(
      name=cfg.name, model_name=model_name, method=cfg.method, device=device,
      train_tflite=lowered.train_tflite,
      predict_tflite=lowered.predict_tflite, infer_int8_tflite=int8,
      train_info=flatbuffer.model_info(lowered.train_tflite),
      predict_info=flatbuffer.model_info(lowered.predict_tflite),
      infer_int8_info=flatbuffer.model_info(int8),
      train_images_input=images_idx, train_labels_input=labels_idx,
      batch_size=batch, image_shape=shape,
      class_names=tuple(class_names),
      arena=package.shared_arena_bytes(arenas["train.tflite"],
                                       arenas["predict.tflite"]),
      max_samples=cfg.max_samples,
      arena_in_external_ram=cfg.arena_in_external_ram,
      arduino_tflm_library=cfg.arduino_tflm_library)


def _finetune(cfg: ExportConfig, model, x_train, y_train) -> None:
  if cfg.finetune_epochs > 0:
    train_lib.fit(model, x_train, y_train, epochs=cfg.finetune_epochs,
                  batch_size=cfg.batch or 8, optimizer="sgd",
                  learning_rate=cfg.finetune_learning_rate, momentum=0.9,
                  label_smoothing=cfg.label_smoothing, seed=cfg.seed,
                  progress=False)


def _int8_model(cfg: ExportConfig, model, x_train, y_train) -> bytes:
  source = model
  if cfg.qat_epochs > 0:
    source = quantize.quantization_aware_finetune(
        model, x_train, y_train, epochs=cfg.qat_epochs,
        batch_size=cfg.batch or 8, learning_rate=cfg.finetune_learning_rate,
        seed=cfg.seed)
  return quantize.quantize_int8(source, x_train, cfg.calibration_images)


def _lower(cfg: ExportConfig, device, model_name: str, model, int8: bytes,
           shape, class_names) -> _Lowered:
  """Lowers at the asked batch, or grows the batch 1, 2, 4, 8 while it
  fits (activation memory grows with it) and keeps the last that fits."""
  int8_arena = tflm.measure_arena(int8)
  predict_arenas = {}  # the predict model does not depend on the batch
  chosen = None
  for batch in ((cfg.batch,) if cfg.batch else BATCH_CANDIDATES):
    lowered = lower.lower_model(model, batch_size=batch,
                                learning_rate=cfg.learning_rate,
                                momentum=cfg.momentum,
                                label_smoothing=cfg.label_smoothing)
    if lowered.predict_tflite not in predict_arenas:
      predict_arenas[lowered.predict_tflite] = tflm.measure_arena(
          lowered.predict_tflite)
    arenas = {"train.tflite": tflm.measure_arena(lowered.train_tflite),
              "predict.tflite": predict_arenas[lowered.predict_tflite],
              "infer.tflite": int8_arena}
    spec = _build_spec(cfg, device, model_name, lowered, int8, arenas, shape,
                       batch, class_names)
    ram, flash = package.memory_consumers(spec)
    fit_result = fit_lib.check_fit(
        device, ram_consumers=ram, flash_consumers=flash,
        sram_margin=cfg.sram_margin, flash_reserve=cfg.flash_reserve,
        use_external_ram=cfg.arena_in_external_ram)
    log.info("batch %d: %d B of %d B RAM needed", batch, fit_result.ram_needed,
             fit_result.ram_available)
    if not fit_result.fits:
      break
    chosen = _Lowered(batch, lowered, arenas, spec, fit_result)
  if chosen is None:
    fit_lib.require_fit(device, fit_result,
                        devices_lib.load_devices(cfg.devices_files),
                        cfg.sram_margin, batch=batch, method=cfg.method)
  package.check_variables(chosen.spec)
  return chosen


def _verify(cfg: ExportConfig, model, chosen: _Lowered, data, x_train,
            y_train):
  """(train-step parity, inference parity), both in TFLM."""
  # A seeded sample of the test set: datasets may be sorted by label.
  rng = np.random.RandomState(cfg.seed)
  pick = np.sort(rng.permutation(len(data.x_test))[:cfg.verify_images])
  x_test = np.asarray(data.x_test, np.float32)[pick]
  y_test = np.asarray(data.y_test)[pick]
  keras_logits = model.predict(x_test, batch_size=64, verbose=0)
  spec = chosen.spec
  inference = inference_check.inference_parity(
      keras_logits, spec.predict_tflite, spec.infer_int8_tflite,
      spec.infer_int8_info, x_test, y_test)
  batches = []
  for _ in range(cfg.verify_steps):
    idx = rng.choice(len(x_train), chosen.batch,
                     replace=len(x_train) < chosen.batch)
    batches.append((x_train[idx], y_train[idx].astype(np.int32)))
  train = train_check.train_parity(chosen.lowered, batches,
                                   tolerance=cfg.parity_tolerance,
                                   seed=cfg.seed)
  _check_parity(cfg, train, inference)
  return train, inference


def _check_parity(cfg, train, inference):
  worst = {"train-step loss": train.max_rel_err_loss,
           "trained parameters": train.max_rel_err_params,
           "predict-model logits": inference.max_rel_err_logits}
  bad = {k: v for k, v in worst.items() if not v <= cfg.parity_tolerance}
  if bad:
    raise ExportError(
        "TFLM does not reproduce TF within the relative tolerance "
        f"{cfg.parity_tolerance}: "
        + ", ".join(f"{k} {v:.3g}" for k, v in sorted(bad.items()))
        + ". The lowering of some layer is wrong for this model; nothing was "
        "written. Run `python -m export.verify` with the same flags to find "
        "the layer.")


def _analytic_memory(model, batch: int):
  try:
    m = memory.training_memory(model, batch_size=batch)
  except ValueError as e:
    log.warning("Analytic memory model unavailable: %s", e)
    return None
  return {"total_bytes": int(round(m.total_bytes)),
          "activation_bytes": int(round(m.activation_bytes)),
          "param_bytes": int(round(m.param_bytes)),
          "source": "modelled (TinyTL accounting)"}


def _rewrite(backbone, cfg: ExportConfig, model_name: str, num_classes: int):
  """The method applied; for a model file, checked to lower, with errors
  naming the file."""
  own_file = models_lib.is_model_path(model_name)
  try:
    rewritten = rewrite_lib.apply_method(backbone, cfg.method,
                                         num_classes=num_classes,
                                         seed=cfg.seed)
    if own_file:
      lower.check_lowerable(rewritten, batch_size=cfg.batch or 1)
  except ValueError as e:
    if own_file:
      raise ExportError(f"{model_name}: {e}") from None
    raise
  return rewritten


def run_export(cfg: ExportConfig) -> ExportResult:
  """Runs the export; raises (and writes nothing) on any failure."""
  plan = validate(cfg)
  # load
  keras.utils.set_random_seed(cfg.seed)
  backbone, record = load_backbone(plan.model, plan.pretrained,
                                   cfg.resolution)
  shape = image_shape(backbone)
  data = data_lib.load(cfg.dataset, resolution=shape[0], channels=shape[2],
                       seed=cfg.seed, max_per_class=cfg.samples_per_class)
  x_train = np.asarray(data.x_train, np.float32)
  y_train = np.asarray(data.y_train)
  # rewrite
  rewritten = _rewrite(backbone, cfg, plan.model, data.num_classes)
  model_name, model_file = plan.model, None
  if models_lib.is_model_path(plan.model):
    # The package and report name the file, not the machine's path to it.
    model_file = plan.model
    model_name = os.path.basename(os.path.normpath(plan.model))
  # fine-tune
  _finetune(cfg, rewritten, x_train, y_train)
  # lower
  int8 = _int8_model(cfg, rewritten, x_train, y_train)
  chosen = _lower(cfg, plan.device, model_name, rewritten, int8, shape,
                  data.class_names)
  # verify
  train, inference = _verify(cfg, rewritten, chosen, data, x_train, y_train)
  # package
  files = package.package_files(chosen.spec)
  report = summary.export_report(
      cfg, plan.device, model_name, plan.pretrained, record, model_file, data,
      chosen.batch, chosen.spec, chosen.arenas, chosen.fit, train, inference,
      _analytic_memory(rewritten, chosen.batch),
      sorted(files) + ["REPORT.md", "report.json"])
  files["report.json"] = report_lib.report_json(report)
  files["REPORT.md"] = report_lib.report_markdown(report)
  with atomic.atomic_directory(cfg.out, OUTPUT_MARKER) as tmp:
    atomic.write_tree(tmp, files)
  return ExportResult(os.path.abspath(cfg.out), report)
