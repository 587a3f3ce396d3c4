"""The report.json dict of an export: every figure, in one place.

A pure function of the export's data (keys sorted on writing, floats rounded
where they are measured, no dates or host paths), so the same flags give the
same bytes. ``tflite_tl.firmware.report`` renders it as REPORT.md.
"""
from typing import Any, Dict, List, Optional

from tflite_tl import flatbuffer
from tflite_tl.firmware import package
from tflite_tl.pipeline.config import ExportConfig
from tflite_tl.verify.errors import round_figure

FORMAT = "tflite-tl-export/1"
_RECORD_KEYS = ("dataset", "resolution", "channels", "weights_sha256", "model")


def _variables(spec, predict_names) -> List[Dict[str, Any]]:
  """The trained variables and whether the predict model reads them:
  resource variables by name (builtin flavor), variable tensors by their
  predict-model twin (kernel flavor)."""
  if spec.tensor_variables:
    return [dict(t.info.to_dict(), in_predict_model=t.predict_tensor >= 0)
            for t in spec.tensor_variables]
  return [dict(v.to_dict(), in_predict_model=(
      v.container, v.shared_name) in predict_names)
          for v in spec.variables]


def export_report(cfg: ExportConfig, device, model_name: str,
                  pretrained: bool, record: Optional[Dict],
                  model_file: Optional[str], data, batch: int,
                  spec: package.BuildSpec, arenas, fit_result, train,
                  inference, analytic: Optional[Dict], files: List[str], *,
                  finetune, device_training, lowering: Optional[Dict] = None,
                  selection: Optional[Dict] = None,
                  memory_budget: Optional[Dict] = None,
                  firmware_globals: Optional[Dict] = None,
                  instruction_counts: Optional[Dict] = None,
                  selection_pass: Optional[Dict] = None,
                  sample_storage: Optional[Dict] = None
                  ) -> Dict[str, Any]:
  """The report of one export (see docs/export.md for the fields).

  ``finetune`` is the fine-tune stage's result (recipe, history, test
  accuracy of the host model); ``device_training`` the on-device check
  (``tflite_tl.verify.on_device.DeviceTraining``) or None;
  ``firmware_globals`` the fit check's firmware-globals figure
  (``fit.FirmwareGlobals.to_dict``; None with the arena in external RAM);
  ``instruction_counts`` the QEMU figures or why there are none;
  ``selection_pass`` fisher.tflite's entry
  (``tflite_tl.pipeline.selection_graph.build``) or None.
  """
  recipe = finetune.recipe
  host = {
      "recipe": None if recipe is None else {
          "optimizer": recipe.optimizer,
          "learning_rate": recipe.learning_rate,
          "batch_size": recipe.batch_size, "epochs": recipe.epochs},
      "loss_first_epoch": None if finetune.history is None
      else round_figure(finetune.history.loss[0], 5),
      "loss_last_epoch": None if finetune.history is None
      else round_figure(finetune.history.loss[-1], 5),
      "test_images": int(len(data.x_test)),
      "test_accuracy": round_figure(finetune.test_accuracy, 4),
      "source": "host training (Keras float model)",
  }
  predict_names = {(v.container, v.shared_name)
                   for v in spec.predict_info.variables}
  capacity = device.arena_capacity(cfg.arena_in_external_ram)
  return {
      "format": FORMAT,
      "config": {
          "model": model_name, "pretrained": pretrained,
          "model_file": model_file,
          "pretrained_record": {k: record[k] for k in sorted(record)
                                if k in _RECORD_KEYS} if record else None,
          "method": cfg.method, "dataset": cfg.dataset,
          "device": device.name, "resolution": spec.image_shape[0],
          "batch": batch, "learning_rate": cfg.learning_rate,
          "momentum": cfg.momentum, "label_smoothing": cfg.label_smoothing,
          "finetune_epochs": cfg.finetune_epochs,
          "finetune_learning_rate": cfg.finetune_learning_rate,
          "finetune_optimizer": cfg.finetune_optimizer,
          "finetune_batch": cfg.finetune_batch,
          "device_epochs": cfg.device_epochs,
          "samples_per_class": cfg.samples_per_class,
          "qat_epochs": cfg.qat_epochs, "seed": cfg.seed, "name": cfg.name,
          "max_samples": cfg.max_samples,
          "sample_buffer": spec.max_samples, "sram_margin": cfg.sram_margin,
          "flash_reserve": cfg.flash_reserve,
          "arena_in_external_ram": cfg.arena_in_external_ram,
          "sample_storage": cfg.sample_storage,
          "arduino_tflm_library": cfg.arduino_tflm_library,
          "kernels": cfg.kernels, "precision": cfg.precision, "qas": cfg.qas,
          "memory_budget": cfg.memory_budget,
          "compute_budget": cfg.compute_budget,
          "selection_criterion": cfg.selection_criterion,
          "selection_allocation": cfg.selection_allocation,
      },
      "lowering": lowering,
      "selection": selection,
      "selection_pass": selection_pass,
      "memory_budget": memory_budget,
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
      "firmware_globals": firmware_globals,
      "sample_storage": sample_storage,
      "instruction_counts": instruction_counts,
      "parity": {"train": train.to_dict(), "inference": dict(
          inference.to_dict(),
          verdict=inference.verdict(cfg.parity_tolerance))},
      "accuracy": {
          "host_finetune": host,
          "device_training": None if device_training is None
          else device_training.to_dict(),
      },
      "ops": {"train.tflite": flatbuffer.op_counts(spec.train_tflite),
              "predict.tflite": flatbuffer.op_counts(spec.predict_tflite),
              "infer.tflite": flatbuffer.op_counts(spec.infer_int8_tflite)},
      "variables": _variables(spec, predict_names),
      "arena_bytes": spec.arena_bytes,
      "schema_id": f"0x{spec.schema_id:08x}",
      "files": files,
  }
