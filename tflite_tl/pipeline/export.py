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
  firmware   with --instruction_counts only: the firmware built for
             Cortex-M4F, linked with the board's memory (its globals
             measured, the fit checked again) and run in QEMU for
             instruction counts per train step and per prediction
  package    Arduino library, ESP-IDF component, reports, written atomically
"""
import dataclasses
import logging
import os
import pathlib
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tflite_tl import atomic
from tflite_tl import data as data_lib
from tflite_tl import devices as devices_lib
from tflite_tl import flatbuffer
from tflite_tl import lower
from tflite_tl import memory
from tflite_tl import models as models_lib
from tflite_tl import rewrite as rewrite_lib
from tflite_tl import sparse as sparse_lib
from tflite_tl import tflm
from tflite_tl import train as train_lib
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import instruction_counts
from tflite_tl.firmware import op_resolver
from tflite_tl.firmware import package
from tflite_tl.firmware import plots
from tflite_tl.firmware import report as report_lib
from tflite_tl.firmware import reselect_tables
from tflite_tl.firmware import sample_store
from tflite_tl.lower import quantize
from tflite_tl.lower.fake_quant import fake_quantized_kernels
from tflite_tl.pipeline import selection_graph
from tflite_tl.pipeline import summary
from tflite_tl.pipeline import training_budget
from tflite_tl.pipeline.backbone import image_shape
from tflite_tl.pipeline.backbone import load_backbone
from tflite_tl.pipeline.config import BATCH_CANDIDATES
from tflite_tl.pipeline.config import MAX_AUTO_SAMPLES
from tflite_tl.pipeline.config import MIN_SAMPLES
from tflite_tl.pipeline.config import OUTPUT_MARKER
from tflite_tl.pipeline.config import ExportConfig
from tflite_tl.pipeline.config import ExportError
from tflite_tl.pipeline.config import Flavor
from tflite_tl.pipeline.config import Plan
from tflite_tl.pipeline.config import instruction_counts_unsupported
from tflite_tl.pipeline.config import validate
from tflite_tl.pipeline.progress import Progress
from tflite_tl.pipeline.progress import Stage
from tflite_tl.tflm.runner import train_inputs_order
from tflite_tl.verify import inference as inference_check
from tflite_tl.verify import on_device
from tflite_tl.verify import train_step as train_check

log = logging.getLogger(__name__)

DEVICE_PLOT = "device_training.png"
# TinyTrain's selection pass runs on at most this many images per class of
# the user's training samples (the paper's support sets are few-shot).
SUPPORT_PER_CLASS = 10


@dataclasses.dataclass(frozen=True)
class ExportResult:
  out: str
  report: Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _Lowered:
  """The lower stage's result at the chosen batch."""
  batch: int
  flavor: Flavor
  lowered: lower.LoweredModel
  arenas: Dict[str, tflm.ArenaReport]
  spec: package.BuildSpec
  fit: fit_lib.FitResult
  # (batch, RAM bytes) of the next candidate, which did not fit.
  rejected: Optional[Tuple[int, int]] = None
  # fisher.tflite and its report entry (method tinytrain).
  selection_pass: Optional[Tuple[bytes, Dict[str, Any]]] = None


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
      max_samples=cfg.max_samples or MIN_SAMPLES,
      train_epochs=cfg.device_epochs or 1,
      arena_in_external_ram=cfg.arena_in_external_ram,
      arduino_tflm_library=cfg.arduino_tflm_library)


@dataclasses.dataclass(frozen=True)
class _FineTune:
  recipe: Optional[train_lib.Recipe]  # None: no host fine-tuning
  history: Optional[train_lib.History]
  test_accuracy: float  # Keras float model on the whole test split


def _recipe(cfg: ExportConfig, num_samples: int) -> train_lib.Recipe:
  base = train_lib.finetune_recipe(cfg.method, num_samples)
  return train_lib.Recipe(
      optimizer=cfg.finetune_optimizer,
      learning_rate=(cfg.finetune_learning_rate
                     if cfg.finetune_learning_rate is not None
                     else base.learning_rate),
      batch_size=cfg.finetune_batch,
      epochs=(cfg.finetune_epochs if cfg.finetune_epochs is not None
              else train_lib.recipe.default_epochs(num_samples,
                                                   cfg.finetune_batch)))


def _finetune(cfg: ExportConfig, model, x_train, y_train, data,
              stage: Stage) -> _FineTune:
  recipe = _recipe(cfg, len(x_train))
  history = None
  if recipe.epochs > 0:
    with stage.bar(recipe.epochs, "epoch") as bar:

      def advance(_, hist):
        bar.set_postfix(loss=f"{hist.loss[-1]:.3f}")
        bar.update(1)

      history = train_lib.fit(
          model, x_train, y_train, epochs=recipe.epochs,
          batch_size=recipe.batch_size, optimizer=recipe.optimizer,
          learning_rate=recipe.learning_rate, momentum=0.9,
          label_smoothing=cfg.label_smoothing, seed=cfg.seed, progress=False,
          on_epoch_end=advance)
  accuracy = float(train_lib.evaluate(model, data.x_test, data.y_test))
  return _FineTune(recipe if history is not None else None, history,
                   accuracy)


def _int8_model(cfg: ExportConfig, model, x_train, y_train,
                recipe: train_lib.Recipe, calibration: np.ndarray) -> bytes:
  """infer.tflite, calibrated on ``calibration`` (a seeded sample of every
  class: the training images come grouped by class, so their first hundred
  would hold only the first few classes' activation ranges)."""
  source = model
  if cfg.qat_epochs > 0:
    source = quantize.quantization_aware_finetune(
        model, x_train, y_train, epochs=cfg.qat_epochs,
        batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
        seed=cfg.seed)
  return quantize.quantize_int8(source, calibration, len(calibration))


def _candidates(cfg: ExportConfig, below: Optional[int] = None):
  """The batches to try; ``below``: only those smaller than it."""
  if cfg.batch:
    return (cfg.batch,) if below is None or cfg.batch < below else ()
  # The app trains on its sample buffer: a batch cannot exceed it.
  return tuple(b for b in BATCH_CANDIDATES
               if b <= (cfg.max_samples or MIN_SAMPLES)
               and (below is None or b < below))


def _variable_channels(cfg: ExportConfig, flavor: Flavor, model) -> bool:
  """TinyTrain in the builtin flavor reads its chosen channels from
  variables, so that the board can re-select them (when some layer trains
  only some of its channels)."""
  return (cfg.method == "tinytrain" and flavor.kernels == "builtin"
          and bool(reselect_tables.full_kernels(model)))


def _lower_flavor(cfg: ExportConfig, flavor: Flavor, model, batch: int,
                  calibration: np.ndarray) -> lower.LoweredModel:
  return lower.lower_model(
      model, batch_size=batch, learning_rate=cfg.learning_rate,
      momentum=cfg.momentum, label_smoothing=cfg.label_smoothing,
      kernels=flavor.kernels, precision=flavor.precision,
      calibration_images=calibration if flavor.precision == "int8" else None,
      qas=cfg.qas,
      variable_channels=_variable_channels(cfg, flavor, model))


# Why a TinyTrain export in the kernel flavor cannot re-select on the board.
TL_NO_RESELECT = (
    "with the tl kernels: their sparse layers' channel lists are constant "
    "tensors (the TL_* update kernels read them at every invoke, so "
    "variable tensors would do; docs/tinytrain.md)")


def _with_selection_pass(cfg: ExportConfig, device, model, chosen: _Lowered,
                         build) -> _Lowered:
  """``chosen`` with fisher.tflite (``build(batch, precision)``) and, where
  the board can run it, on-device re-selection: its tables in the package,
  its flash counted, and the arena grown to what the fisher model needs
  alone if that is more (measured in TFLM), the fit checked again. A
  re-selection that does not fit the board is left out, saying why."""
  try:
    fisher, entry = build(chosen.batch, chosen.flavor.precision)
  except ValueError as e:
    # The train step is verified on its own: an export without its
    # optional selection pass is still a working export.
    log.warning("%s; exporting without it", str(e).rstrip("."))
    why = str(e).rstrip(".")
    return dataclasses.replace(
        chosen, spec=dataclasses.replace(
            chosen.spec, reselect_unavailable=f"not shipped: {why}"),
        selection_pass=(None, {"file": selection_graph.FILE,
                               "unavailable": why}))
  entry = dict(entry)
  spec, fit = chosen.spec, chosen.fit
  why = None
  if chosen.flavor.kernels != "builtin":
    why = TL_NO_RESELECT
  elif not _variable_channels(cfg, chosen.flavor, model):
    why = "every chosen layer trains all its channels: nothing to re-select"
  if why is None:
    try:
      tables = reselect_tables.reselect_tables(
          chosen.lowered.train_tflite, spec.variables, fisher,
          entry["layers"], tflm.measure_arena(fisher).total,
          reselect_tables.full_kernels(model))
    except ValueError as e:
      why = str(e)
  if why is None:
    grown = dataclasses.replace(spec, reselect=tables)
    grown_fit = _fit(cfg, device, grown)
    if grown_fit.fits or not fit.fits:
      spec, fit = grown, grown_fit
    else:
      why = (f"fisher.tflite needs an arena of "
             f"{grown.reselect_arena_bytes:,} B, and the board's RAM does "
             f"not hold it ({grown_fit.ram_needed:,} of "
             f"{grown_fit.ram_available:,} B)")
  if why is None:
    entry["on_device"] = {
        "available": True, "command": "F",
        "flash_bytes": len(fisher),
        "arena_bytes": spec.reselect_arena_bytes,
        "train_predict_arena_bytes": package.board_arena_bytes(spec.arena),
        "board_arena_bytes": spec.arena_bytes,
        "ram_added_bytes": fit.ram_needed - chosen.fit.ram_needed,
        "layers": [l.layer for l in spec.reselect.layers],
        "source": "measured (TFLM arenas)"}
  else:
    spec = dataclasses.replace(spec, reselect_unavailable=why)
    entry["on_device"] = {"available": False, "why": why}
  return dataclasses.replace(chosen, spec=spec, fit=fit,
                             selection_pass=(fisher, entry))


def _calibration(cfg: ExportConfig, x_train: np.ndarray) -> np.ndarray:
  """The activation-range images of an int8 train step: a seeded sample of
  the user's training images (the int8 inference model uses the same)."""
  n = min(len(x_train), cfg.calibration_images)
  pick = np.sort(np.random.RandomState(cfg.seed).choice(len(x_train), n,
                                                        replace=False))
  return x_train[pick]


def _lower(cfg: ExportConfig, device, model_name: str, model, int8: bytes,
           shape, class_names, stage: Stage, flavors, calibration,
           selection_pass=None, batch_below: Optional[int] = None
           ) -> Tuple[_Lowered, list]:
  """Lowers in the first flavor of ``flavors`` that fits the board: at the
  asked batch, or growing the batch 1, 2, 4, 8 while it fits (activation
  memory grows with it), keeping the last that fits. ``selection_pass``
  (TinyTrain): ``build(batch, precision)`` of fisher.tflite, added at the
  chosen batch (``_with_selection_pass``) before the sample buffer takes
  the RAM left. ``batch_below``: only batches smaller than it (a retry after
  a parity failure at that batch).

  Returns the choice and, per flavor tried, (flavor, batch, RAM needed,
  fits) of its smallest batch, for the report.
  """
  if cfg.batch and cfg.max_samples and cfg.batch > cfg.max_samples:
    raise ExportError(f"--batch {cfg.batch} exceeds --max_samples "
                      f"{cfg.max_samples}: the board trains on batches of "
                      "its stored samples.")
  int8_arena = tflm.measure_arena(int8)
  candidates = _candidates(cfg, batch_below)
  tried, first_failure = [], None
  for flavor in flavors:
    predict_arenas = {}  # the predict model does not depend on the batch
    chosen = fit_result = None
    with stage.bar(len(candidates), f"batch size ({flavor})",
                   "lower") as bar:
      for batch in candidates:
        bar.set_postfix(batch=batch)
        lowered = _lower_flavor(cfg, flavor, model, batch, calibration)
        if lowered.predict_tflite not in predict_arenas:
          predict_arenas[lowered.predict_tflite] = tflm.measure_arena(
              lowered.predict_tflite)
        arenas = {"train.tflite": tflm.measure_arena(lowered.train_tflite),
                  "predict.tflite": predict_arenas[lowered.predict_tflite],
                  "infer.tflite": int8_arena}
        spec = _build_spec(cfg, device, model_name, lowered, int8, arenas,
                           shape, batch, class_names)
        if batch == candidates[0]:
          unsupported = _unpackageable(spec)
          if unsupported and len(flavors) > 1:
            # Auto: a flavor the firmware cannot build is never exported.
            tried.append({"kernels": flavor.kernels,
                          "precision": flavor.precision, "batch": batch,
                          "ram_needed": 0, "train_arena":
                              arenas["train.tflite"].total, "fits": False,
                          "reason": unsupported})
            break
          if unsupported:
            raise ExportError(f"{flavor}: {unsupported}")
        spec, fit_result = _place_samples(cfg, device, spec)
        bar.update(1)
        log.info("%s, batch %d: %d B of %d B RAM needed", flavor, batch,
                 fit_result.ram_needed, fit_result.ram_available)
        if chosen is None:
          tried.append({"kernels": flavor.kernels,
                        "precision": flavor.precision, "batch": batch,
                        "ram_needed": fit_result.ram_needed,
                        "train_arena": arenas["train.tflite"].total,
                        "fits": fit_result.fits})
        if not fit_result.fits:
          break
        chosen = _Lowered(batch, flavor, lowered, arenas, spec, fit_result)
    if chosen is not None:
      break
    if first_failure is None and fit_result is not None:
      first_failure = (fit_result, batch, flavor)
  if chosen is None:
    # The most memory-efficient flavor's figures explain the failure best.
    fit_result, batch, flavor = first_failure
    fit_lib.require_fit(device, fit_result,
                        devices_lib.load_devices(cfg.devices_files),
                        cfg.sram_margin, batch=batch, method=cfg.method)
  if not fit_result.fits:
    chosen = dataclasses.replace(chosen, rejected=(batch,
                                                   fit_result.ram_needed))
  if selection_pass is not None:
    chosen = _with_selection_pass(cfg, device, model, chosen, selection_pass)
  if cfg.max_samples is None:
    chosen = _fill_sample_buffer(cfg, device, chosen)
  package.check_variables(chosen.spec)
  return chosen, tried


def _unpackageable(spec: package.BuildSpec) -> Optional[str]:
  """Why the firmware cannot be built for ``spec`` (None: it can)."""
  try:
    package.package_files(spec)
  except op_resolver.UnsupportedOpError as e:
    return str(e)
  return None


def _fit(cfg: ExportConfig, device, spec,
         globals_bytes: Optional[int] = None) -> fit_lib.FitResult:
  """``globals_bytes``: the firmware's other globals, measured (None: the
  board family's modelled allowance)."""
  ram, flash = package.memory_consumers(spec, globals_bytes)
  return fit_lib.check_fit(
      device, ram_consumers=ram, flash_consumers=flash,
      sram_margin=cfg.sram_margin, flash_reserve=cfg.flash_reserve,
      use_external_ram=cfg.arena_in_external_ram)


def _place_samples(cfg: ExportConfig, device, spec: package.BuildSpec,
                   globals_bytes: Optional[int] = None
                   ) -> Tuple[package.BuildSpec, fit_lib.FitResult]:
  """``spec`` with its samples where --sample_storage puts them, and its fit.

  auto: RAM when the whole sample buffer fits; else, on a board with a
  storage backend, flash when that fits (RAM then holds one batch, flash the
  sample area); else RAM, whose failure names the sample buffer.
  """
  if cfg.sample_storage != "auto":
    spec = dataclasses.replace(spec, sample_storage=cfg.sample_storage)
    return spec, _fit(cfg, device, spec, globals_bytes)
  ram = dataclasses.replace(spec, sample_storage="ram")
  ram_fit = _fit(cfg, device, ram, globals_bytes)
  if ram_fit.fits or not sample_store.board_has_storage(device):
    return ram, ram_fit
  flash = dataclasses.replace(spec, sample_storage="flash")
  flash_fit = _fit(cfg, device, flash, globals_bytes)
  if flash_fit.fits:
    return flash, flash_fit
  return ram, ram_fit


def _samples_report(cfg: ExportConfig, device, spec: package.BuildSpec,
                    fit_result: fit_lib.FitResult) -> Dict[str, Any]:
  """report.json's sample_storage: the choice, why, and its bytes."""
  ram_spec = dataclasses.replace(spec, sample_storage="ram")
  ram_fit = _fit(cfg, device, ram_spec)
  in_ram = ram_spec.sample_buffer_bytes
  kind = fit_result.ram_kind
  if cfg.sample_storage != "auto":
    why = f"--sample_storage={cfg.sample_storage}"
  elif not spec.samples_in_flash:
    why = (f"auto: the whole sample buffer ({spec.max_samples} images, "
           f"{in_ram:,} B) fits the {kind} budget")
  else:
    why = (f"auto: {spec.max_samples} images in {kind} ({in_ram:,} B) would "
           f"need {ram_fit.ram_needed:,} B of {ram_fit.ram_available:,} B; "
           f"{device.name} has a storage backend and the flash check has "
           f"room for the {spec.sample_area_bytes:,}-byte sample area, so "
           f"{kind} holds one batch ({spec.batch_size} images)")
  area = spec.sample_area
  return {
      "storage": spec.sample_storage, "asked": cfg.sample_storage,
      "why": why, "samples": spec.max_samples,
      "ram_bytes": spec.sample_buffer_bytes,
      "ram_bytes_if_in_ram": in_ram,
      "flash_bytes": spec.sample_area_bytes,
      "records": None if area is None else area.slots,
      "record_bytes": None if area is None else area.record_bytes,
      "erase_unit": None if area is None else sample_store.ERASE_UNIT,
      "records_erased_per_wrap": (None if area is None
                                  else area.records_per_block),
  }


def _fill_flash_samples(cfg: ExportConfig, device, chosen: _Lowered
                        ) -> _Lowered:
  """Samples in flash: the largest ring (at most MAX_AUTO_SAMPLES) the flash
  check and the RAM (2 bytes of index per record) leave room for."""
  lo, hi = chosen.spec.max_samples, MAX_AUTO_SAMPLES
  best = chosen
  while lo < hi:
    mid = (lo + hi + 1) // 2
    spec = dataclasses.replace(chosen.spec, max_samples=mid)
    fit_result = _fit(cfg, device, spec)
    if fit_result.fits:
      best = dataclasses.replace(chosen, spec=spec, fit=fit_result)
      lo = mid
    else:
      hi = mid - 1
  return best


def _fill_sample_buffer(cfg: ExportConfig, device, chosen: _Lowered
                        ) -> _Lowered:
  """The largest sample buffer the RAM left after the arena holds (at most
  MAX_AUTO_SAMPLES): the more samples, the better on-device training
  generalises."""
  if chosen.spec.samples_in_flash:
    return _fill_flash_samples(cfg, device, chosen)
  spec = chosen.spec
  free = chosen.fit.ram_available - chosen.fit.ram_needed
  grown = min(MAX_AUTO_SAMPLES,
              spec.max_samples + free // (spec.image_elements + 1))
  spec = dataclasses.replace(spec, max_samples=max(spec.max_samples, grown))
  return dataclasses.replace(chosen, spec=spec, fit=_fit(cfg, device, spec))


def _measure_firmware(cfg: ExportConfig, device, chosen: _Lowered
                      ) -> Tuple[instruction_counts.FirmwareRun, _Lowered]:
  """The firmware built, linked for the board and run in QEMU; the fit
  checked again with the globals measured on the linked firmware."""
  with tempfile.TemporaryDirectory(prefix="tflite_tl_firmware_") as tmp:
    run = instruction_counts.measure(chosen.spec, pathlib.Path(tmp))
  fit_result = _fit(cfg, device, chosen.spec, run.globals_bytes)
  fit_lib.require_fit(device, fit_result,
                      devices_lib.load_devices(cfg.devices_files),
                      cfg.sram_margin, batch=chosen.batch, method=cfg.method)
  return run, dataclasses.replace(chosen, fit=fit_result)


def _loss_summary(tuned) -> str:
  """The fine-tune's mean training loss, first and last epoch (one epoch
  has one mean, not a change)."""
  losses = tuned.history.loss
  if len(losses) == 1:
    return f"mean loss {losses[0]:.3f} over its epoch"
  return f"mean loss {losses[0]:.3f} (first epoch) -> {losses[-1]:.3f} (last)"


def _instruction_counts_report(cfg: ExportConfig, device,
                               run: Optional[instruction_counts.FirmwareRun]
                               ) -> Dict[str, Any]:
  """report.json's instruction_counts: the figures, or why there are none."""
  if run is not None:
    return {"measured": True, **run.to_dict()}
  why = instruction_counts_unsupported(cfg, device)
  return {"measured": False, "how": why or (
      "run the export with --instruction_counts (needs "
      + ", ".join(instruction_counts.REQUIREMENTS) + "; the first run builds "
      "TFLM for Cortex-M4F, minutes, cached under ~/.cache/tflite-tl/)")}


@dataclasses.dataclass(frozen=True)
class _Verified:
  train: train_check.TrainParity
  inference: inference_check.InferenceParity
  device: Optional[on_device.DeviceTraining]


def _verify(cfg: ExportConfig, model, chosen: _Lowered, data, x_train,
            y_train, stage: Stage) -> _Verified:
  """Parity of the three models in TFLM, then the device-in-the-loop
  check: the exported train step trains on a board-sized sample buffer."""
  # Seeded samples of the test split (datasets may be sorted by label): the
  # board's samples for the on-device check (the user's own images, never
  # seen by the host fine-tune; a few of each class), and other, held-out
  # images for every accuracy figure measured in TFLM.
  buffer, pick = on_device.split_test_images(
      data.y_test, cfg.seed,
      chosen.spec.max_samples if cfg.device_epochs else 0, cfg.verify_images)
  if len(pick) == 0 or (cfg.device_epochs and len(buffer) < chosen.batch):
    raise ExportError(
        f"The test split of {cfg.dataset} has {len(data.x_test)} images: "
        "too few for a board sample buffer plus held-out images. Raise "
        "--samples_per_class, or skip the on-device check with "
        "--device_epochs=0.")
  x_test = np.asarray(data.x_test, np.float32)[pick]
  y_test = np.asarray(data.y_test)[pick]
  spec = chosen.spec
  with stage.bar(3 if cfg.device_epochs else 2, "check") as bar:
    if chosen.flavor.precision == "int8" and chosen.flavor.kernels == "tl":
      # The predict model is int8 too: its TF reference is the same integer
      # arithmetic (tflite_tl.lower.tl.reference), not the float model.
      keras_logits = chosen.lowered.module.predict(x_test).numpy()
    elif chosen.flavor.precision == "int8":
      # Builtin int8: the predict model computes with the int8 values of
      # the frozen kernels, as the train step's reference does.
      with fake_quantized_kernels(model):
        keras_logits = model.predict(x_test, batch_size=64, verbose=0)
    else:
      keras_logits = model.predict(x_test, batch_size=64, verbose=0)
    inference = inference_check.inference_parity(
        keras_logits, spec.predict_tflite, spec.infer_int8_tflite,
        spec.infer_int8_info, x_test, y_test,
        tolerance=cfg.parity_tolerance)
    bar.update(1)
    rng = np.random.RandomState(cfg.seed + 1)  # the train-step batches
    batches = []
    for _ in range(cfg.verify_steps):
      idx = rng.choice(len(x_train), chosen.batch,
                       replace=len(x_train) < chosen.batch)
      batches.append((x_train[idx], y_train[idx].astype(np.int32)))
    train = train_check.train_parity(chosen.lowered, batches,
                                     tolerance=cfg.parity_tolerance,
                                     seed=cfg.seed)
    bar.update(1)
    _check_parity(cfg, train, inference)
    device = None
    if cfg.device_epochs:
      device = on_device.device_training(
          spec.train_tflite, spec.predict_tflite,
          (np.asarray(data.x_test, np.float32)[buffer],
           np.asarray(data.y_test)[buffer]), (x_test, y_test),
          batch=chosen.batch, epochs=cfg.device_epochs)
      bar.update(1)
  return _Verified(train, inference, device)


class ParityError(ExportError):
  """TFLM does not reproduce TF for the lowered model."""


def _lower_summary(chosen: _Lowered) -> str:
  rejected = (f" (batch {chosen.rejected[0]} needs "
              f"{chosen.rejected[1]:,} B)" if chosen.rejected else "")
  return (f"{chosen.flavor}, batch {chosen.batch}{rejected}; train.tflite "
          f"{len(chosen.spec.train_tflite):,} B, arena "
          f"{chosen.arenas['train.tflite'].total:,} B (TFLM, measured); "
          f"{chosen.spec.max_samples} samples on the board (in "
          f"{chosen.spec.sample_storage}); RAM "
          f"{chosen.fit.ram_needed:,} of {chosen.fit.ram_available:,} B")


def _check_parity(cfg, train, inference):
  bad = []
  if train.parity == "failed":
    bad.append(f"train step (loss {train.max_rel_err_loss:.3g}, parameters "
               f"{train.max_rel_err_params:.3g}, also against TF on "
               "1-ulp-perturbed inputs)")
  if inference.verdict(cfg.parity_tolerance) == "failed":
    bad.append(f"predict-model logits {inference.max_rel_err_logits:.3g} "
               f"({inference.differing_images} of {inference.images} "
               "images differ)")
  if bad:
    raise ParityError(
        "TFLM does not reproduce TF within the relative tolerance "
        f"{cfg.parity_tolerance}: " + ", ".join(bad)
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


def _support(cfg: ExportConfig, x_train, y_train):
  """TinyTrain's support set: a few of the user's samples per class."""
  pick = data_lib.cap_per_class(np.arange(len(y_train)), y_train,
                                SUPPORT_PER_CLASS, cfg.seed)
  return x_train[pick], np.asarray(y_train)[pick].astype(np.int32)


def _method_options(cfg: ExportConfig, plan: Plan, backbone, x_train,
                    y_train, num_classes: int):
  """Options of a sparse-update method, and TinyTrain's memory budget (the
  board's, measured, unless --memory_budget / --compute_budget give one)."""
  options, budget = {}, None
  if cfg.selection_criterion:
    options["criterion"] = cfg.selection_criterion
  if cfg.method != "tinytrain":
    return options, budget
  if cfg.selection_allocation:
    options["allocation"] = cfg.selection_allocation
  batch = cfg.batch or 1
  options["support"] = _support(cfg, x_train, y_train)
  options["batch_size"] = batch
  if plan.flavors[0] == Flavor("tl", "int8"):
    # Its forward pass is int8: the budget sees int8 activations and float
    # gradients (sparse.cost.CostModel).
    options["forward_bytes"] = 1
  if cfg.memory_budget or cfg.compute_budget:
    options["memory_budget"] = cfg.memory_budget
    options["compute_budget"] = cfg.compute_budget
    return options, budget
  flavor = plan.flavors[0]
  consumers = training_budget.inference_consumers(
      backbone, num_classes=num_classes, batch_size=batch,
      max_samples=cfg.max_samples or MIN_SAMPLES,
      learning_rate=cfg.learning_rate, seed=cfg.seed,
      kernels=flavor.kernels, precision=flavor.precision,
      calibration_images=_calibration(cfg, x_train))
  if not cfg.arena_in_external_ram:
    other = fit_lib.firmware_globals(plan.device)
    consumers[other.consumer] = other.bytes
  in_flash = training_budget.with_samples_in_flash(
      consumers, int(np.prod(backbone.inputs[0].shape[1:])), batch,
      cfg.max_samples or MIN_SAMPLES)
  if cfg.sample_storage == "flash":
    consumers = in_flash
  try:
    budget = training_budget.memory_budget_for_device(
        plan.device, consumers, sram_margin=cfg.sram_margin,
        use_external_ram=cfg.arena_in_external_ram)
  except fit_lib.DoesNotFitError:
    # auto: samples that leave no budget in RAM go to flash if they can.
    if (cfg.sample_storage != "auto" or
        not sample_store.board_has_storage(plan.device)):
      raise
    budget = training_budget.memory_budget_for_device(
        plan.device, in_flash, sram_margin=cfg.sram_margin,
        use_external_ram=cfg.arena_in_external_ram)
  options["memory_budget"] = budget.budget_bytes
  return options, budget


def _rewrite(backbone, cfg: ExportConfig, model_name: str, num_classes: int,
             options):
  """The method applied; for a model file, checked to lower, with errors
  naming the file."""
  own_file = models_lib.is_model_path(model_name)
  try:
    rewritten = rewrite_lib.apply_method(backbone, cfg.method,
                                         num_classes=num_classes,
                                         seed=cfg.seed, **options)
    if own_file:
      lower.check_lowerable(rewritten, batch_size=cfg.batch or 1)
  except ValueError as e:
    if own_file:
      raise ExportError(f"{model_name}: {e}") from None
    if isinstance(e, sparse_lib.BudgetError):
      raise ExportError(str(e)) from None
    raise
  return rewritten


# How often TinyTrain selects again after a measured RAM or flash overrun.
MAX_RESELECTIONS = 6


def _flash_fits_smaller(fit) -> bool:
  """Whether a smaller selection can make the flash fit: it fits, or the
  overrun is within the parameter slots, the flash that the trained
  parameters take and a smaller selection gives back (the sample area and
  the frozen constants do not shrink with it)."""
  if fit.flash_fits:
    return True
  slots = fit_lib.flash_consumer_bytes(fit, fit_lib.PARAMETER_SLOTS)
  return fit.flash_needed - fit.flash_available < slots


def _may_reselect(budget, fit, selection, reselections) -> bool:
  """What both re-selections need: a board-derived budget, a measured fit
  and a selection to start from, and attempts left."""
  return (budget is not None and fit is not None and selection is not None
          and len(reselections) < MAX_RESELECTIONS)


def _reselect_later(options, budget, error, selection,
                    reselections: List[Dict[str, Any]],
                    forward: Sequence[str]) -> Optional[List[str]]:
  """The candidate layers of the next selection after a measured RAM
  overrun, or None (no board-derived budget, a flash overrun that a smaller
  selection cannot remove, nothing later to choose, or tried enough).
  Appends the attempt to ``reselections`` (REPORT.md lists them).
  ``forward``: the model's layer names in forward order (the selection
  keeps its per-layer figures by name, which is not that order:
  ``block10_dw`` sorts before ``block2_dw``).

  The modelled budget counts the chosen layers' state; what it misses grows
  with the backward pass's depth: every block between the earliest chosen
  layer and the head keeps its unfused forward ops, their ReLU masks and the
  interpreter's state. So the next selection starts after the earliest
  layer chosen, under a budget scaled by modelled / measured state.
  """
  fit = error.fit
  if (not _may_reselect(budget, fit, selection, reselections)
      or not _flash_fits_smaller(fit) or fit.ram_fits):
    return None
  considered = {name for name, _ in selection.layer_potentials}
  order = [name for name in forward if name in considered]
  chosen = [order.index(n) for n in selection.layer_names if n in order]
  if not chosen:
    return None
  later = order[min(chosen) + 1:]
  if not later:
    return None
  # The measured training state beyond inference, against the modelled:
  # scale the budget by that ratio too (the overrun is partly per layer).
  measured = options["memory_budget"] + fit.ram_needed - fit.ram_available
  modelled = max(selection.modelled_bytes, 1)
  smaller = int(options["memory_budget"] * min(1.0, modelled / measured))
  reselections.append({"reason": "ram", "earliest_layer": order[min(chosen)],
                       "layers": list(selection.layer_names),
                       "memory_budget": options["memory_budget"],
                       "modelled_bytes": selection.modelled_bytes,
                       "ram_needed": fit.ram_needed,
                       "ram_available": fit.ram_available,
                       "next_budget": smaller})
  options["memory_budget"] = smaller
  return later


def _reselect_for_flash(options, budget, error, selection,
                        reselections: List[Dict[str, Any]]) -> bool:
  """After a measured flash overrun with the RAM fitting, whether to select
  again (the same candidates) under a parameter budget; sets it in
  ``options`` and appends the attempt to ``reselections``.

  The board keeps two copies of the trained parameters in flash (the
  parameter slots), which the RAM budget does not price: a selection that
  spends its RAM on many layers' weights can fit the RAM and miss the
  flash. The next selection bounds the modelled persisted bytes (trained
  parameters and optimizer state) by the share of the measured slots that
  the flash left room for.
  """
  fit = error.fit
  if (not _may_reselect(budget, fit, selection, reselections)
      or not fit.ram_fits or fit.flash_fits or not _flash_fits_smaller(fit)):
    return False
  slots = fit_lib.flash_consumer_bytes(fit, fit_lib.PARAMETER_SLOTS)
  overrun = fit.flash_needed - fit.flash_available
  persisted = selection.persisted_bytes
  smaller = int(persisted * (slots - overrun) / slots)
  if smaller < 1:
    return False
  reselections.append({"reason": "flash",
                       "layers": list(selection.layer_names),
                       "parameter_budget": options.get("parameter_budget"),
                       "persisted_bytes": persisted,
                       "parameter_slots_bytes": slots,
                       "flash_needed": fit.flash_needed,
                       "flash_available": fit.flash_available,
                       "next_parameter_budget": smaller})
  options["parameter_budget"] = smaller
  return True


def _budget_report(budget, options, reselections) -> Dict[str, Any]:
  """The board's budget, and the selections the measured fit rejected."""
  report = budget.to_dict()
  report["reselections"] = reselections
  report["selected_under_bytes"] = options.get("memory_budget")
  report["selected_under_parameter_bytes"] = options.get("parameter_budget")
  return report


def _count(weights) -> int:
  return int(sum(np.prod(w.shape) for w in weights))


def run_export(cfg: ExportConfig,
               progress: Optional[Progress] = None) -> ExportResult:
  """Runs the export; raises (and writes nothing) on any failure.

  ``progress`` receives one line per stage (``Progress(sys.stderr)`` in the
  CLI); by default nothing is printed.
  """
  progress = progress or Progress()
  with progress.stage("load") as stage:
    plan = validate(cfg)
    # Deterministic TF ops from the start: the TinyTrain selection's one
    # forward and backward pass runs before the fine-tune would enable them,
    # and a near tie in its potentials must not depend on thread timing.
    train_lib.seed_everything(cfg.seed)
    backbone, record = load_backbone(plan.model, plan.pretrained,
                                     cfg.resolution)
    shape = image_shape(backbone)
    data = data_lib.load(cfg.dataset, resolution=shape[0],
                         channels=shape[2], seed=cfg.seed,
                         max_per_class=cfg.samples_per_class)
    x_train = np.asarray(data.x_train, np.float32)
    y_train = np.asarray(data.y_train)
    origin = (f"pretrained on {record.get('dataset')}" if record
              else "weights from the file" if models_lib.is_model_path(
                  plan.model)
              else "RANDOM weights: no shipped backbone of that name")
    stage.summary = (
        f"{plan.model} ({origin}, {shape[0]}x{shape[1]}x{shape[2]}); "
        f"{cfg.dataset}: {len(x_train)} train / {len(data.x_test)} test "
        f"images, {data.num_classes} classes")
    model_name, model_file = plan.model, None
    if models_lib.is_model_path(plan.model):
      # The package and report name the file, not the machine's path to it.
      model_file = plan.model
      model_name = os.path.basename(os.path.normpath(plan.model))
  options, budget = _method_options(cfg, plan, backbone, x_train, y_train,
                                    data.num_classes)
  # TinyTrain's budget is modelled; the lowered step is measured. While the
  # measured step overruns the board's RAM, select again from the layers
  # after the earliest one chosen; while only its flash overruns, select
  # again under a parameter budget (MAX_RESELECTIONS times at most).
  reselections = []
  while True:
    with progress.stage("rewrite") as stage:
      rewritten = _rewrite(backbone, cfg, plan.model, data.num_classes,
                           options)
      selection = rewrite_lib.selection_of(rewritten)
      stage.summary = (
          f"{cfg.method}: {_count(rewritten.trainable_weights):,} "
          f"of {_count(rewritten.weights):,} weights train")
      if selection is not None:
        stage.summary += f"; {selection.summary()}"
    with progress.stage("fine-tune") as stage:
      tuned = _finetune(cfg, rewritten, x_train, y_train, data, stage)
      stage.summary = (
          (f"host, {tuned.recipe.describe()}: {_loss_summary(tuned)}; "
           if tuned.recipe else "none (--finetune_epochs=0); ")
          + f"test accuracy {tuned.test_accuracy:.1%} "
          f"({len(data.x_test)} images, Keras float)")
    with progress.stage("lower") as stage:
      calibration = _calibration(cfg, x_train)
      int8 = _int8_model(cfg, rewritten, x_train, y_train,
                         tuned.recipe or _recipe(cfg, len(x_train)),
                         calibration)
      flavors = plan.flavors
      build_pass = None
      if cfg.method == "tinytrain" and selection is not None:
        def build_pass(batch, precision):
          return selection_graph.build(rewritten, selection,
                                       options["support"], batch_size=batch,
                                       precision=precision)
      try:
        chosen, tried = _lower(cfg, plan.device, model_name, rewritten, int8,
                               shape, data.class_names, stage, flavors,
                               calibration, build_pass)
      except fit_lib.DoesNotFitError as e:
        later = _reselect_later(options, budget, e, selection,
                                reselections,
                                [layer.name for layer in rewritten.layers])
        if later is not None:
          stage.summary = (f"{e.fit.ram_needed:,} B of RAM needed, "
                           f"{e.fit.ram_available:,} B available: selecting "
                           "again after "
                           f"{reselections[-1]['earliest_layer']} under "
                           f"{options['memory_budget']:,} B")
          options["candidates"] = later
          continue
        if _reselect_for_flash(options, budget, e, selection, reselections):
          stage.summary = (f"{e.fit.flash_needed:,} B of flash needed, "
                           f"{e.fit.flash_available:,} B available: selecting "
                           "again under a parameter budget of "
                           f"{options['parameter_budget']:,} B")
          continue
        raise
      stage.summary = _lower_summary(chosen)
    break
  with progress.stage("verify") as stage:
    rejected_flavors = []
    while True:
      try:
        checked = _verify(cfg, rewritten, chosen, data, x_train, y_train,
                          stage)
        break
      except ParityError as e:
        at = flavors.index(chosen.flavor)
        rest = flavors[at + 1:]
        # A graph that TFLM does not reproduce is never exported. With the
        # batch left to the export, the same flavor is tried at a smaller
        # batch first: an int8 step's parity can hinge on one rounding tie
        # of one image (TFLM and its TF reference each rounding the other
        # way), which another batch's data need not meet; a wrong lowering
        # fails at every batch and then moves on to the next flavor.
        smaller = _candidates(cfg, chosen.batch)
        fixed_flavor = cfg.kernels != "auto" and cfg.precision != "auto"
        if not smaller and (fixed_flavor or not rest):
          raise
        rejected_flavors.append({"kernels": chosen.flavor.kernels,
                                 "precision": chosen.flavor.precision,
                                 "batch": chosen.batch, "reason": str(e)})
        if smaller:
          log.warning("%s, batch %d: %s; trying batch %d", chosen.flavor,
                      chosen.batch, e, smaller[-1])
          flavors = flavors[at:]
          below = chosen.batch
        else:
          log.warning("%s: %s; trying %s", chosen.flavor, e, rest[0])
          flavors = rest
          below = None
        chosen, more = _lower(cfg, plan.device, model_name, rewritten, int8,
                              shape, data.class_names, stage, flavors,
                              calibration, build_pass, batch_below=below)
        tried += more
    text = (f"TFLM vs TF: train step {checked.train.parity.replace('_', ' ')}"
            f" ({checked.train.max_rel_err_params:.1e}), predict "
            f"{checked.inference.max_rel_err_logits:.1e}; int8 agrees "
            f"{checked.inference.int8_agreement:.0%}")
    if rejected_flavors:
      text += (f" (now {chosen.flavor}, batch {chosen.batch}; not exported "
               "after a parity failure: " + ", ".join(
                   f"{r['kernels']} {r['precision']} batch {r['batch']}"
                   for r in rejected_flavors) + ")")
    if checked.device:
      d = checked.device
      text += (f"; on-device training (TFLM, {d.epochs} epochs on "
               f"{d.samples} samples): held-out {d.accuracy_before:.0%} -> "
               f"{d.accuracy_after:.0%}")
    selection_pass = fisher_file = None
    if chosen.selection_pass is not None:
      fisher_file, selection_pass = chosen.selection_pass
    if selection_pass is not None and fisher_file is None:
      text += f"; not shipped: {selection_pass['unavailable']}"
    elif selection_pass is not None:
      text += (f"; {selection_graph.FILE} matches TF "
               f"({selection_pass['max_rel_err']:.1e}"
               + (", within rounding" if selection_pass.get("parity")
                  == "within_rounding" else "") + "), arena "
               f"{selection_pass['arena_bytes']:,} B")
      if selection_pass["on_device"]["available"]:
        text += ", re-selection on the board ('F')"
    stage.summary = text
  lowering = {
      "kernels": chosen.flavor.kernels, "precision": chosen.flavor.precision,
      "qas": (cfg.qas if chosen.flavor.precision == "int8"
              and chosen.flavor.kernels == "tl" else None),
      "why": plan.flavor_reason, "tried": tried,
      "rejected_by_parity": rejected_flavors,
      "activation_scales": (
          f"calibrated on {len(calibration)} of the user's training images "
          "(min/max per tensor)" if chosen.flavor.precision == "int8"
          and chosen.flavor.kernels == "tl" else None),
      "weight_scales": (
          "frozen kernels int8 per output channel (max|w|/127), rebuilt by "
          "DEQUANTIZE where an op reads them"
          if chosen.flavor == Flavor("builtin", "int8") else None),
  }
  firmware_run = None
  if cfg.instruction_counts:
    with progress.stage("firmware") as stage:
      firmware_run, chosen = _measure_firmware(cfg, plan.device, chosen)
      stage.summary = (
          f"Cortex-M4F in QEMU: {firmware_run.per_train_step:,} instructions "
          f"per train step (batch {chosen.batch}), "
          f"{firmware_run.per_prediction:,} per prediction; linked "
          f".data + .bss {firmware_run.ram.globals:,} B, of which other "
          f"globals {firmware_run.globals_bytes:,} B (measured)")
  globals_ = (None if cfg.arena_in_external_ram else fit_lib.firmware_globals(
      plan.device, None if firmware_run is None
      else firmware_run.globals_bytes))
  with progress.stage("export") as stage:
    files = package.package_files(chosen.spec)
    if fisher_file is not None:
      files[selection_graph.FILE] = fisher_file
    if checked.device:
      files[DEVICE_PLOT] = plots.device_loss_curve(
          checked.device.epoch_losses, samples=checked.device.samples,
          batch=checked.device.batch,
          accuracy_before=checked.device.accuracy_before,
          accuracy_after=checked.device.accuracy_after,
          held_out=checked.device.held_out_images,
          title=f"On-device training: {model_name} / {cfg.method} on "
          f"{plan.device.name}")
    report = summary.export_report(
        cfg, plan.device, model_name, plan.pretrained, record, model_file,
        data,
        chosen.batch, chosen.spec, chosen.arenas, chosen.fit, checked.train,
        checked.inference, _analytic_memory(rewritten, chosen.batch),
        sorted(files) + ["REPORT.md", "report.json"], finetune=tuned,
        device_training=checked.device, lowering=lowering,
        selection=None if selection is None else selection.to_dict(),
        memory_budget=None if budget is None else _budget_report(
            budget, options, reselections),
        firmware_globals=None if globals_ is None else globals_.to_dict(),
        instruction_counts=_instruction_counts_report(cfg, plan.device,
                                                      firmware_run),
        selection_pass=selection_pass,
        sample_storage=_samples_report(cfg, plan.device, chosen.spec,
                                       chosen.fit))
    files["report.json"] = report_lib.report_json(report)
    files["REPORT.md"] = report_lib.report_markdown(report)
    with atomic.atomic_directory(cfg.out, OUTPUT_MARKER) as tmp:
      atomic.write_tree(tmp, files)
    out = os.path.abspath(cfg.out)
    stage.summary = (f"{out}: fits {plan.device.name} "
                     f"({chosen.fit.ram_needed:,} of "
                     f"{chosen.fit.ram_available:,} B RAM, "
                     f"{chosen.fit.flash_needed:,} of "
                     f"{chosen.fit.flash_available:,} B flash)")
  return ExportResult(out, report)
