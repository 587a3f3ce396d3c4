"""The real per-run function: one fine-tuning run, measured.

One run = load the shipped pretrained backbone (at the run's resolution) ->
``rewrite.apply_method`` with a new head for the target's classes -> train on
the target's training split (or a k-per-class draw from it) -> test accuracy,
the analytic training memory, the measured TFLM arena of the lowered train
step, trainable parameters and wall time.

Measuring the arena means lowering the train step and running TFLM's
allocator, which costs far more than a small fine-tuning run, and its result
depends only on the graph: the backbone, method, resolution, batch size and
the head's class count, not on the seed or the data. It is measured once per
such key and kept in a second JSONL file beside the results, so a restarted
sweep does not measure again. For the sparse-update methods the graph also
depends on the selection (made on the run's own samples for tinytrain), so
the key holds the method's options and a digest of the selected layers and
channels; the record holds the selection's summary and the time the
rewrite took (for tinytrain: the Fisher pass and the greedy selection).

The run's lowering (``RunConfig.lowering``: kernel flavor, precision, QAS)
is part of the arena key when it is not the default one (so old caches stay
valid). With ``precision="int8"`` the host training is the device's own int8
train step (``tflite_tl.lower.tl.host_training.fit_int8``: TFLM's integer
forward pass, float backward, SGD with or without quantization-aware
scaling, activation scales calibrated on the run's training images) and the
accuracy is the int8 forward pass's, so it describes what the board does.
The optimizer "sgd" is plain SGD (momentum 0), the device's update.
"""
import collections
import hashlib
import json
import os
import time
from typing import Dict, Optional

import numpy as np

from benchmarks.transfer_lib.plan import RunConfig
from benchmarks.transfer_lib.store import ResultsStore
from tflite_tl._compat import keras
from tflite_tl import data, memory, models, rewrite, train

#: The test split is the same for every seed, so seeds measure the spread of
#: the few-shot draw, the head initialisation and the training order only.
SPLIT_SEED = 0

_DATASET_CACHE_SIZE = 4
#: Methods whose modelled figures depend on the training batch.
_BATCH_SIZED = ("tinytrain", "sparse_update")


def _bytes(value) -> int:
  """Bytes from a memory figure given as a number or a report object."""
  for attr in ("total_bytes", "total"):
    if hasattr(value, attr):
      return int(getattr(value, attr))
  return int(value)


def trainable_params(model) -> int:
  return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def backbone_at(name: str, resolution: Optional[int]):
  """The pretrained backbone, rebuilt for another input size if asked."""
  return models.load_pretrained(name, resolution=resolution)


def _fit_int8(config: RunConfig, model, x, y, x_test, y_test) -> float:
  """Trains ``model`` with the device's int8 step; its int8 test accuracy.

  The activation scales are calibrated once, on the training images before
  training, as the export calibrates the scales it writes into the step.
  """
  # Lazy: the int8 step pulls in the lowering (converter, TFLM reader),
  # which float runs never need.
  from tflite_tl.lower.tl import host_training  # pylint: disable=import-outside-toplevel
  policy = host_training.int8_policy(model, x,
                                     learning_rate=config.learning_rate,
                                     qas=config.qas)
  host_training.fit_int8(model, x, y, epochs=config.epochs,
                         batch_size=config.batch_size,
                         learning_rate=config.learning_rate, seed=config.seed,
                         policy=policy)
  return float(host_training.evaluate_int8(model, x_test, y_test,
                                           policy=policy))


class TransferRunner:
  """Callable ``RunConfig -> measurements`` for ``sweep.run_sweep``.

  Args:
    arena_path: JSONL file caching measured arenas (``None``: no cache).
    measure_arena: lower and measure the TFLM arena; with ``False`` the
      records carry ``arena_bytes = None``.
  """

  def __init__(self, arena_path: Optional[str] = None,
               measure_arena: bool = True):
    self.arena_path = arena_path
    self.measure_arena = measure_arena
    self._datasets = collections.OrderedDict()
    self._arena_errors: Dict[str, str] = {}

  @classmethod
  def for_results(cls, results_path: str,
                  measure_arena: bool = True) -> "TransferRunner":
    """The runner whose arena cache sits beside ``results_path``."""
    stem, _ = os.path.splitext(results_path)
    return cls(arena_path=stem + ".arena.jsonl", measure_arena=measure_arena)

  def _dataset(self, name: str, resolution: int, channels: int):
    key = (name, resolution, channels)
    if key not in self._datasets:
      self._datasets[key] = data.load(name, resolution=resolution,
                                      channels=channels, seed=SPLIT_SEED)
      while len(self._datasets) > _DATASET_CACHE_SIZE:
        self._datasets.popitem(last=False)
    return self._datasets[key]

  @staticmethod
  def arena_key(config: RunConfig, resolution: int, num_classes: int,
                selection=None) -> dict:
    key = dict(backbone=config.backbone, method=config.method,
               resolution=resolution, batch_size=config.batch_size,
               num_classes=num_classes)
    key.update(config.lowering.to_dict())
    if config.method_options:
      key["method_options"] = config.options
    if selection is not None:
      chosen = [[c.layer, list(c.channels)] for c in selection.layers]
      key["selection"] = hashlib.sha256(json.dumps(
          [chosen, list(selection.bias_layers)]).encode()).hexdigest()[:16]
    return key

  def training_images(self, config: RunConfig, resolution: int,
                      channels: int):
    """The run's training images and labels (its few-shot draw)."""
    ds = self._dataset(config.dataset, resolution, channels)
    x, y = ds.x_train, ds.y_train
    if config.shots is not None:
      x, y = data.few_shot(x, y, config.shots, seed=config.seed)
    return x, y

  def _arena(self, config: RunConfig, model, resolution: int,
             num_classes: int,
             calibration_images: Optional[np.ndarray] = None) -> dict:
    """The measured train-step arena of ``model`` lowered as ``config``
    says; an int8 lowering calibrates on ``calibration_images`` (default:
    the run's training images)."""
    key = self.arena_key(config, resolution, num_classes,
                         rewrite.selection_of(model))
    key_id = hashlib.sha256(json.dumps(key, sort_keys=True).encode()
                            ).hexdigest()[:16]
    if self.arena_path:
      cached = ResultsStore(self.arena_path).get(key_id)
      if cached is not None:
        return {"arena_bytes": cached["arena_bytes"], "arena_error": None}
    if key_id in self._arena_errors:
      return {"arena_bytes": None, "arena_error": self._arena_errors[key_id]}
    # Imported here: lowering pulls in the converter and the TFLM interpreter.
    from tflite_tl import lower, tflm  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    try:
      low = config.lowering
      if low.precision == "int8" and calibration_images is None:
        calibration_images, _ = self.training_images(
            config, resolution, int(model.input_shape[-1]))
      lowered = lower.lower_model(
          model, batch_size=config.batch_size,
          learning_rate=config.learning_rate, kernels=low.kernels,
          precision=low.precision, qas=low.qas,
          calibration_images=calibration_images)
      report = tflm.measure_arena(lowered.train_tflite)
    except Exception as e:  # pylint: disable=broad-except
      # An unsupported graph must not cost the accuracy result; the error is
      # recorded with the run and the measurement retried by the next sweep.
      message = f"{type(e).__name__}: {e}"
      self._arena_errors[key_id] = message
      return {"arena_bytes": None, "arena_error": message}
    arena = _bytes(report)
    if self.arena_path:
      with ResultsStore(self.arena_path) as store:
        store.append({"run_id": key_id, "key": key, "arena_bytes": arena,
                      "arena_head_bytes": int(report.head),
                      "arena_tail_bytes": int(report.tail),
                      "train_tflite_bytes": len(lowered.train_tflite),
                      "predict_tflite_bytes": len(lowered.predict_tflite),
                      "seconds": round(time.perf_counter() - start, 2)})
    return {"arena_bytes": arena, "arena_error": None}

  def __call__(self, config: RunConfig) -> dict:
    start = time.perf_counter()
    keras.backend.clear_session()
    train.seed_everything(config.seed)
    backbone = backbone_at(config.backbone, config.resolution)
    _, height, _, channels = backbone.input_shape
    ds = self._dataset(config.dataset, height, channels)
    x, y = self.training_images(config, height, channels)
    options = config.options
    if rewrite.method_needs_support(config.method):
      options.setdefault("support", (x, y))
    if config.method in _BATCH_SIZED:
      options.setdefault("batch_size", config.batch_size)
    rewrite_start = time.perf_counter()
    model = rewrite.apply_method(backbone, config.method,
                                 num_classes=ds.num_classes, seed=config.seed,
                                 **options)
    rewrite_s = time.perf_counter() - rewrite_start
    if config.precision == "int8":
      accuracy = _fit_int8(config, model, x, y, ds.x_test, ds.y_test)
      host = "int8 device step (host_training.fit_int8)"
    else:
      train.fit(model, x, y, epochs=config.epochs,
                batch_size=config.batch_size, optimizer=config.optimizer,
                learning_rate=config.learning_rate, momentum=0.0,
                seed=config.seed, progress=False)
      accuracy = float(train.evaluate(model, ds.x_test, ds.y_test))
      host = "float (tflite_tl.train.fit)"
    wall = time.perf_counter() - start
    modelled = memory.training_memory(model, config.batch_size)
    result = {
        "accuracy": accuracy,
        "training_memory_bytes": _bytes(modelled),
        "training_memory_activation_bytes": int(
            getattr(modelled, "activation_bytes", 0)),
        "training_memory_param_bytes": int(
            getattr(modelled, "param_bytes", 0)),
        "trainable_params": trainable_params(model),
        "num_train": int(len(y)),
        "num_test": int(len(ds.y_test)),
        "num_classes": int(ds.num_classes),
        "resolution_px": int(height),
        "wall_time_s": round(wall, 2),
        "rewrite_time_s": round(rewrite_s, 2),
    }
    if not config.lowering.is_default:
      result["host_training"] = host
    selection = rewrite.selection_of(model)
    if selection is not None:
      result["selection"] = {
          "layers": [[c.layer, len(c.channels), c.total_channels]
                     for c in selection.layers],
          "bias_layers": len(selection.bias_layers),
          "modelled_bytes": selection.modelled_bytes,
          "backward_macs": selection.backward_macs,
          "criterion": selection.criterion}
      result["selection_modelled_bytes"] = selection.modelled_bytes
    if self.measure_arena:
      result.update(self._arena(config, model, height, ds.num_classes, x))
    else:
      result.update({"arena_bytes": None, "arena_error": "not measured"})
    return result
