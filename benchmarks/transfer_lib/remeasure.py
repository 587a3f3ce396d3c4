"""Re-measures the TFLM arena column of a results file.

The arena of a run depends only on its graph (backbone, method, resolution,
batch size, classes, lowering), not on its accuracy. When the lowering changes, the
accuracies stay valid but the measured arenas do not: this lowers each
distinct graph of the results once more, measures it, and rewrites the
arena cache and every run's ``arena_bytes``. Both files are replaced
atomically (written aside, then renamed), under the results file's lock.
"""
import os
import sys
from typing import Callable, Dict, Optional, Tuple

from benchmarks.transfer_lib import plan
from benchmarks.transfer_lib.store import ResultsStore

#: ``measure(config, resolution, num_classes) -> {"arena_bytes", "arena_error"}``
MeasureFn = Callable[[plan.RunConfig, int, int], Dict]


def _key(record: dict) -> Tuple:
  config = record["config"]
  lowering = plan.RunConfig.from_dict(config).lowering
  return (config["backbone"], config["method"], int(record["resolution_px"]),
          int(config["batch_size"]), int(record["num_classes"]),
          lowering.kernels, lowering.precision, lowering.qas)


def real_measure(arena_path: str) -> MeasureFn:
  """Measures with the real lowering, appending to the cache ``arena_path``."""
  # Imported here: the runner pulls in TensorFlow.
  from benchmarks.transfer_lib import runner  # pylint: disable=import-outside-toplevel
  from tflite_tl import rewrite  # pylint: disable=import-outside-toplevel
  from tflite_tl._compat import keras  # pylint: disable=import-outside-toplevel
  transfer = runner.TransferRunner(arena_path=arena_path, measure_arena=True)

  def measure(config, resolution, num_classes):
    keras.backend.clear_session()
    backbone = runner.backbone_at(config.backbone, resolution)
    model = rewrite.apply_method(backbone, config.method,
                                 num_classes=num_classes, seed=config.seed)
    return transfer._arena(config, model, resolution, num_classes)  # pylint: disable=protected-access

  return measure


def remeasure_arenas(results_path: str,
                     measure_factory: Optional[Callable[[str], MeasureFn]]
                     = None, log=sys.stderr) -> int:
  """Re-measures every graph of ``results_path``; returns how many."""
  stem = os.path.splitext(results_path)[0]
  arena_path = stem + ".arena.jsonl"
  fresh_cache = arena_path + ".new"
  if os.path.exists(fresh_cache):
    os.remove(fresh_cache)
  measure = (measure_factory or real_measure)(fresh_cache)
  with ResultsStore(results_path) as store:
    records = store.records()
    firsts = {}
    for record in records:
      firsts.setdefault(_key(record), record)
    measured = {}
    for number, (key, record) in enumerate(sorted(firsts.items()), start=1):
      config = plan.RunConfig.from_dict(record["config"])
      measured[key] = measure(config, key[2], key[4])
      print(f"[{number}/{len(firsts)}] {key}: "
            f"{measured[key]['arena_bytes']} B", file=log)
    store.replace_all([dict(r, **measured[_key(r)]) for r in records])
  if os.path.exists(fresh_cache):
    os.replace(fresh_cache, arena_path)
  return len(measured)
