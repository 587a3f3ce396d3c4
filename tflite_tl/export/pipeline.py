"""The whole export: rewrite -> fine-tune -> lower -> int8 -> verify -> fit -> write.

``run_export(ExportConfig(...))`` is what ``python -m export`` calls. Inputs
are validated before any heavy work; the device fit is checked as soon as the
arenas are measured; the output directory appears only when everything
succeeded (see ``atomic``), otherwise nothing is written.
"""
import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tflite_tl import devices as devices_lib
from tflite_tl.export import atomic
from tflite_tl.export import fit as fit_lib
from tflite_tl.export import model_info as info_lib
from tflite_tl.export import op_resolver
from tflite_tl.export import package
from tflite_tl.export import predict_model
from tflite_tl.export import quantize
from tflite_tl.export import report as report_lib
from tflite_tl.export import verification

# Shipped backbones tried in order when --model is not given: the first is
# the one known to train within a 256 KB board with the default method (see
# docs/export.md); zoo models with random weights only if none is shipped.
DEFAULT_MODELS = ("tiny", "mcunet", "mobilenet_v2")
DEFAULT_METHOD = "tinytl_lb"
DEFAULT_DATASET = "animal_mnist"
DEFAULT_DEVICE = "nano33ble"
BATCH_CANDIDATES = (1, 2, 4, 8)

log = logging.getLogger(__name__)


class ExportError(RuntimeError):
  """An export could not be made; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """All choices of an export (the CLI flags)."""
  out: str
  model: Optional[str] = None  # None: the first shipped default backbone
  method: str = DEFAULT_METHOD
  dataset: str = DEFAULT_DATASET
  device: str = DEFAULT_DEVICE
  resolution: Optional[int] = None  # None: the backbone's own
  batch: Optional[int] = None  # None: the largest of 1/2/4/8 that fits
  learning_rate: float = 0.01
  momentum: float = 0.0
  label_smoothing: float = 0.0
  finetune_epochs: int = 1
  finetune_learning_rate: float = 0.05
  samples_per_class: Optional[int] = 100  # host fine-tune/calibration cap
  calibration_images: int = 100
  qat_epochs: int = 0
  verify_steps: int = 3
  parity_tolerance: float = 1e-4
  verify_images: int = 100
  max_samples: int = 16
  sram_margin: float = fit_lib.DEFAULT_SRAM_MARGIN
  flash_reserve: int = fit_lib.DEFAULT_FLASH_RESERVE
  arena_in_external_ram: bool = False
  devices_files: Tuple[str, ...] = ()
  name: str = "tltl_model"
  arduino_tflm_library: str = "Chirale_TensorFlowLite"
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class ExportResult:
  out: str
  report: Dict[str, Any]


# ---------------------------------------------------------------- validation


def _validate(cfg: ExportConfig):
  from tflite_tl import data as data_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl import models as models_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl import rewrite as rewrite_lib  # pylint: disable=import-outside-toplevel
  device = devices_lib.get_device(cfg.device, cfg.devices_files)
  if cfg.arena_in_external_ram:
    device.arena_capacity(use_external_ram=True)  # raises with the fix
  methods = rewrite_lib.list_methods()
  if cfg.method not in methods:
    raise ExportError(f"Unknown method '{cfg.method}'. Supported methods: "
                      f"{', '.join(methods)}.")
  model = cfg.model
  shipped = models_lib.list_pretrained()
  if model is None:
    model = next((m for m in DEFAULT_MODELS if m in shipped), None)
    if model is None:
      model = next(m for m in DEFAULT_MODELS if m in models_lib.list_models())
  elif models_lib.is_model_path(model):
    pass  # A model file: read_model_file names the file in its errors.
  elif model not in shipped and model not in models_lib.list_models():
    raise ExportError(
        f"Unknown model '{model}'. Pretrained backbones: "
        f"{', '.join(shipped) or 'none shipped'}; zoo models (random "
        f"weights): {', '.join(models_lib.list_models())}; or a tf-keras "
        "model file (.keras, .h5, SavedModel directory).")
  if not cfg.dataset.startswith("folder:"):
    datasets = data_lib.list_datasets()
    if cfg.dataset not in datasets:
      raise ExportError(
          f"Unknown dataset '{cfg.dataset}'. Supported: {', '.join(datasets)}"
          ", or folder:/path/to/images (one sub-folder per class).")
  if cfg.batch is not None and cfg.batch < 1:
    raise ExportError(f"--batch must be >= 1, got {cfg.batch}.")
  if cfg.resolution is not None and cfg.resolution < 8:
    raise ExportError(f"--resolution must be >= 8, got {cfg.resolution}.")
  if not cfg.name.isidentifier():
    raise ExportError(f"--name '{cfg.name}' must be a C identifier (letters, "
                      "digits, '_').")
  if cfg.max_samples < 1:
    raise ExportError("--max_samples must be >= 1.")
  # Fail before the heavy work if the output directory cannot be used.
  out = os.path.abspath(cfg.out)
  if os.path.exists(out) and (not os.path.isdir(out) or (
      os.listdir(out) and not os.path.exists(os.path.join(out, atomic.MARKER)))):
    raise atomic.OutputExistsError(
        f"--out {out} exists and is not a tflite-tl export; choose a new or "
        "empty directory.")
  return device, model, model in shipped


# ------------------------------------------------------------------ backbone


def _backbone(name: str, pretrained: bool, resolution: Optional[int]):
  from tflite_tl import models as models_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl.models import pretrained as pretrained_lib  # pylint: disable=import-outside-toplevel
  if models_lib.is_model_path(name):
    # The export's images are in [0, 1], the train step's input contract.
    loaded = models_lib.read_model_file(name, resolution,
                                        unit_range_input=True)
    for note in loaded.notes:
      log.warning("%s", note)
    return loaded.model, None
  if pretrained:
    record = models_lib.pretrained_info(name)
    kwargs = dict(record.get("builder_kwargs", {}))
    if resolution is None or resolution == kwargs.get("resolution"):
      return models_lib.load_pretrained(name), record
    # Convolution weights do not depend on the resolution (global pooling
    # before the head), so the shipped weights load into a resized network.
    kwargs["resolution"] = resolution
    model = models_lib.get_model(record["model"], **kwargs)
    pretrained_lib.load_weights(model, models_lib.weights_path(name))
    return model, record
  # Zoo models default to ImageNet-like inputs; the shipped backbones are
  # 32 px grayscale, so are the random-weight fallbacks.
  kwargs = {"resolution": resolution or 32, "input_channels": 1}
  log.warning("Model '%s' has no shipped pretrained weights: exporting it with "
              "random weights.", name)
  return models_lib.get_model(name, **kwargs), None


def _image_shape(model) -> Tuple[int, int, int]:
  shape = [int(d) for d in model.inputs[0].shape[1:]]
  return shape[0], shape[1], shape[2]


# ------------------------------------------------------------------- measure


def _measure(lowered, predict: bytes) -> Dict[str, Any]:
  from tflite_tl import tflm  # pylint: disable=import-outside-toplevel
  return {"train.tflite": tflm.measure_arena(lowered.train_tflite),
          "predict.tflite": tflm.measure_arena(predict)}


def _build_spec(cfg, device, model_name, lowered, predict, int8, arenas,
                image_shape, batch, class_names) -> package.BuildSpec:
  from tflite_tl.tflm.runner import train_inputs_order  # pylint: disable=import-outside-toplevel
  images_idx, labels_idx = train_inputs_order(lowered.train_tflite)
  return package.BuildSpec(
      name=cfg.name, model_name=model_name, method=cfg.method, device=device,
      train_tflite=lowered.train_tflite, predict_tflite=predict,
      infer_int8_tflite=int8,
      train_info=info_lib.model_info(lowered.train_tflite),
      predict_info=info_lib.model_info(predict),
      infer_int8_info=info_lib.model_info(int8),
      train_images_input=images_idx, train_labels_input=labels_idx,
      batch_size=batch, image_shape=image_shape,
      class_names=tuple(class_names),
      arena=package.shared_arena_bytes(arenas["train.tflite"],
                                       arenas["predict.tflite"]),
      max_samples=cfg.max_samples,
      arena_in_external_ram=cfg.arena_in_external_ram,
      arduino_tflm_library=cfg.arduino_tflm_library)


def _consumers(spec: package.BuildSpec) -> Tuple[Dict[str, int], Dict[str, int]]:
  ram = {
      "arena (train + predict, shared head)": spec.arena_bytes,
      "variable scratch": spec.max_variable_bytes,
      "sample buffer": spec.sample_buffer_bytes,
  }
  flash = {
      "train.tflite": len(spec.train_tflite),
      "predict.tflite": len(spec.predict_tflite),
      "infer.tflite (int8)": len(spec.infer_int8_tflite),
      "parameter slots (2)": spec.storage_flash_bytes,
  }
  return ram, flash


def _check_fit(cfg, device, spec):
  ram, flash = _consumers(spec)
  result = fit_lib.check_fit(
      device, ram_consumers=ram, flash_consumers=flash,
      sram_margin=cfg.sram_margin, flash_reserve=cfg.flash_reserve,
      use_external_ram=cfg.arena_in_external_ram)
  return result


# ---------------------------------------------------------------------- run


def _lower_for_batch(rewritten, cfg, batch):
  from tflite_tl import lower  # pylint: disable=import-outside-toplevel
  return lower.lower_model(rewritten, batch_size=batch,
                           learning_rate=cfg.learning_rate,
                           momentum=cfg.momentum,
                           label_smoothing=cfg.label_smoothing)


def run_export(cfg: ExportConfig) -> ExportResult:
  """Runs the export; raises (and writes nothing) on any failure."""
  from tflite_tl import data as data_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl import models as models_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl import train as train_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl._compat import keras  # pylint: disable=import-outside-toplevel

  device, model_name, pretrained = _validate(cfg)
  keras.utils.set_random_seed(cfg.seed)
  backbone, record = _backbone(model_name, pretrained, cfg.resolution)
  image_shape = _image_shape(backbone)
  data = data_lib.load(cfg.dataset, resolution=image_shape[0],
                       channels=image_shape[2], seed=cfg.seed,
                       max_per_class=cfg.samples_per_class)
  rewritten = _rewrite(backbone, cfg, model_name, data.num_classes)
  model_file = None
  if models_lib.is_model_path(model_name):
    # The package and report name the file, not the machine's path to it.
    model_file, model_name = model_name, os.path.basename(
        os.path.normpath(model_name))
  x_train = np.asarray(data.x_train, np.float32)
  y_train = np.asarray(data.y_train)
  if cfg.finetune_epochs > 0:
    train_lib.fit(rewritten, x_train, y_train, epochs=cfg.finetune_epochs,
                  batch_size=cfg.batch or 8, optimizer="sgd",
                  learning_rate=cfg.finetune_learning_rate, momentum=0.9,
                  label_smoothing=cfg.label_smoothing, seed=cfg.seed,
                  progress=False)

  int8_source = rewritten
  if cfg.qat_epochs > 0:
    int8_source = quantize.quantization_aware_finetune(
        rewritten, x_train, y_train, epochs=cfg.qat_epochs,
        batch_size=cfg.batch or 8, learning_rate=cfg.finetune_learning_rate,
        seed=cfg.seed)
  int8 = quantize.quantize_int8(int8_source, x_train, cfg.calibration_images)
  from tflite_tl import tflm  # pylint: disable=import-outside-toplevel
  int8_arena = tflm.measure_arena(int8)

  # Lower and measure. An automatic batch grows 1, 2, 4, 8 while it fits
  # (activation memory grows with the batch), keeping the last that fits.
  chosen = None
  predict = None
  for batch in ((cfg.batch,) if cfg.batch else BATCH_CANDIDATES):
    lowered = _lower_for_batch(rewritten, cfg, batch)
    if predict is None:  # batch 1 by construction: the same for every batch
      predict = predict_model.predict_tflite(lowered)
    arenas = dict(_measure(lowered, predict), **{"infer.tflite": int8_arena})
    spec = _build_spec(cfg, device, model_name, lowered, predict, int8,
                       arenas, image_shape, batch, data.class_names)
    fit_result = _check_fit(cfg, device, spec)
    log.info("batch %d: %d B of %d B RAM needed", batch, fit_result.ram_needed,
             fit_result.ram_available)
    if not fit_result.fits:
      break
    chosen = (batch, lowered, arenas, spec, fit_result)
  if chosen is None:
    fit_lib.require_fit(device, fit_result,
                        devices_lib.load_devices(cfg.devices_files),
                        cfg.sram_margin, batch=batch, method=cfg.method)
  batch, lowered, arenas, spec, fit_result = chosen
  package.check_variables(spec)

  # Verification in TFLM (subprocesses).
  # A seeded sample of the test set: datasets may be sorted by label.
  rng = np.random.RandomState(cfg.seed)
  pick = np.sort(rng.permutation(len(data.x_test))[:cfg.verify_images])
  x_test = np.asarray(data.x_test, np.float32)[pick]
  y_test = np.asarray(data.y_test)[pick]
  keras_logits = rewritten.predict(x_test, batch_size=64, verbose=0)
  inference = verification.inference_parity(
      keras_logits, predict, int8, spec.infer_int8_info, x_test,
      y_test)
  batches = []
  for _ in range(cfg.verify_steps):
    idx = rng.choice(len(x_train), batch, replace=len(x_train) < batch)
    batches.append((x_train[idx], y_train[idx].astype(np.int32)))
  train = verification.train_parity(lowered.module, lowered.train_tflite,
                                    batches)
  _check_parity(cfg, train, inference)

  analytic = None
  try:
    from tflite_tl import memory  # pylint: disable=import-outside-toplevel
    m = memory.training_memory(rewritten, batch_size=batch)
    analytic = {"total_bytes": int(round(m.total_bytes)),
                "activation_bytes": int(round(m.activation_bytes)),
                "param_bytes": int(round(m.param_bytes)),
                "source": "modelled (TinyTL accounting)"}
  except (ImportError, ValueError) as e:
    log.warning("Analytic memory model unavailable: %s", e)

  files = package.package_files(spec)
  report = _report(cfg, device, model_name, pretrained, record, model_file,
                   data, batch,
                   spec, arenas, fit_result, train, inference, analytic,
                   sorted(files) + ["REPORT.md", "report.json"])
  files["report.json"] = report_lib.report_json(report)
  files["REPORT.md"] = report_lib.report_markdown(report)
  with atomic.atomic_directory(cfg.out) as tmp:
    atomic.write_tree(tmp, files)
  return ExportResult(os.path.abspath(cfg.out), report)


def _rewrite(backbone, cfg, model_name, num_classes):
  """The method applied; for a model file, checked to lower, and errors
  naming the file."""
  from tflite_tl import lower  # pylint: disable=import-outside-toplevel
  from tflite_tl import models as models_lib  # pylint: disable=import-outside-toplevel
  from tflite_tl import rewrite as rewrite_lib  # pylint: disable=import-outside-toplevel
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


def _report(cfg, device, model_name, pretrained, record, model_file, data,
            batch, spec, arenas, fit_result, train, inference, analytic,
            files):
  predict_names = {(v.container, v.shared_name)
                   for v in spec.predict_info.variables}
  capacity = device.arena_capacity(cfg.arena_in_external_ram)
  return {
      "format": "tflite-tl-export/1",
      "config": {
          "model": model_name, "pretrained": pretrained,
          "model_file": model_file,
          "pretrained_record": {k: record[k] for k in sorted(record)
                                if k in ("dataset", "resolution", "channels",
                                         "weights_sha256", "model")}
          if record else None,
          "method": cfg.method, "dataset": cfg.dataset,
          "device": device.name, "resolution": spec.image_shape[0],
          "batch": batch, "learning_rate": cfg.learning_rate,
          "momentum": cfg.momentum, "label_smoothing": cfg.label_smoothing,
          "finetune_epochs": cfg.finetune_epochs,
          "finetune_learning_rate": cfg.finetune_learning_rate,
          "samples_per_class": cfg.samples_per_class,
          "qat_epochs": cfg.qat_epochs, "seed": cfg.seed, "name": cfg.name,
          "max_samples": cfg.max_samples, "sram_margin": cfg.sram_margin,
          "flash_reserve": cfg.flash_reserve,
          "arena_in_external_ram": cfg.arena_in_external_ram,
          "arduino_tflm_library": cfg.arduino_tflm_library,
      },
      "device": dict(device.to_dict(), arena_capacity=capacity),
      "data": {"num_classes": data.num_classes,
               "class_names": list(data.class_names),
               "channels": spec.image_shape[2],
               "train_samples": int(len(data.x_train)),
               "test_samples": int(len(data.x_test))},
      "sizes": {"train.tflite": len(spec.train_tflite),
                "predict.tflite": len(spec.predict_tflite),
                "infer.tflite": len(spec.infer_int8_tflite),
                "parameter_bytes": spec.parameter_bytes,
                "storage_slot_bytes": spec.storage_slot_bytes},
      "arenas": {k: v.to_dict() for k, v in sorted(arenas.items())},
      "arena_headroom_bytes": package.ARENA_HEADROOM,
      "analytic_memory": analytic,
      "fit": fit_result.to_dict(),
      "parity": {"train": train.to_dict(), "inference": inference.to_dict()},
      "ops": {"train.tflite": op_resolver.op_counts(spec.train_tflite),
              "predict.tflite": op_resolver.op_counts(spec.predict_tflite),
              "infer.tflite": op_resolver.op_counts(spec.infer_int8_tflite)},
      "variables": [dict(v.to_dict(), in_predict_model=(
          v.container, v.shared_name) in predict_names)
                    for v in spec.variables],
      "arena_bytes": spec.arena_bytes,
      "schema_id": f"0x{spec.schema_id:08x}",
      "files": files,
  }
