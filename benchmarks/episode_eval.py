"""Few-shot episodes on the offline targets: does meta-training help?

For each backbone (e.g. ``tiny`` and its meta-trained ``tiny_meta``),
target dataset and method, N-way K-shot episodes are drawn from the
target's test split (:func:`tflite_tl.data.episodes`): the method
fine-tunes on the support set (host training, as the transfer sweep) and
is scored on the query set. ``protonet`` is the nearest-prototype
classifier on the backbone's features, without training. Each finished
episode is one line of a resumable JSONL store.

The logic of ``python -m benchmarks.episodes``.
"""
import dataclasses
import hashlib
import json
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.transfer_lib.store import ResultsStore
from tflite_tl import data

PROTONET = "protonet"


@dataclasses.dataclass(frozen=True)
class EpisodeRun:
  backbone: str
  dataset: str
  method: str
  episode: int
  ways: int = 5
  shots: int = 5
  queries: int = 15
  epochs: int = 30
  batch_size: int = 8
  learning_rate: float = 3e-3
  seed: int = 0
  method_options: tuple = ()

  @property
  def run_id(self) -> str:
    text = json.dumps(dataclasses.asdict(self), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(backbones: Sequence[str], datasets: Sequence[str],
         methods: Sequence[str], episodes: int, *, ways=5, shots=5,
         queries=15, learning_rates: Optional[Dict[str, float]] = None,
         method_options: Optional[Dict[str, dict]] = None,
         **kwargs) -> List[EpisodeRun]:
  """Every (backbone, dataset, method, episode), episodes varying fastest."""
  learning_rates = learning_rates or {}
  method_options = method_options or {}
  return [EpisodeRun(b, d, m, e, ways=ways, shots=shots, queries=queries,
                     learning_rate=learning_rates.get(m, 3e-3),
                     method_options=tuple(sorted(
                         method_options.get(m, {}).items())), **kwargs)
          for b in backbones for d in datasets for m in methods
          for e in range(episodes)]


class EpisodeRunner:
  """``EpisodeRun -> {"accuracy", "wall_time_s"}``; caches loaded data."""

  def __init__(self):
    self._data = {}

  def _episode(self, run: EpisodeRun, resolution: int, channels: int):
    key = (run.dataset, resolution, channels)
    if key not in self._data:
      self._data[key] = data.load(run.dataset, resolution=resolution,
                                  channels=channels, seed=0)
    ds = self._data[key]
    return data.episodes(ds.x_test, ds.y_test, ways=run.ways, shots=run.shots,
                         queries=run.queries, count=1, seed=run.seed,
                         start=run.episode)[0]

  def __call__(self, run: EpisodeRun) -> dict:
    # Imported here: TensorFlow loads only when episodes really run.
    from tflite_tl import models, rewrite, train  # pylint: disable=import-outside-toplevel
    from tflite_tl._compat import keras  # pylint: disable=import-outside-toplevel
    from tflite_tl.models.meta_pretraining import embedding_layer  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    keras.backend.clear_session()
    train.seed_everything(run.seed + run.episode)
    backbone = models.load_pretrained(run.backbone)
    _, height, _, channels = backbone.input_shape
    episode = self._episode(run, height, channels)
    if run.method == PROTONET:
      embedding = train.embedding_model(backbone, embedding_layer(backbone))
      accuracy = train.prototype_accuracy(embedding, episode)
    else:
      options = dict(run.method_options)
      if rewrite.method_needs_support(run.method):
        options["support"] = (episode.support_x, episode.support_y)
      if run.method in ("tinytrain", "sparse_update"):
        options.setdefault("batch_size", run.batch_size)
      model = rewrite.apply_method(backbone, run.method, num_classes=run.ways,
                                   seed=run.seed + run.episode, **options)
      train.fit(model, episode.support_x, episode.support_y,
                epochs=run.epochs, batch_size=run.batch_size,
                optimizer="adam", learning_rate=run.learning_rate,
                seed=run.seed + run.episode, progress=False)
      accuracy = train.evaluate(model, episode.query_x, episode.query_y)
    return {"accuracy": float(accuracy),
            "wall_time_s": round(time.perf_counter() - start, 2)}


def run_all(runs: Sequence[EpisodeRun], path: str, run_fn=None,
            max_runs: Optional[int] = None) -> int:
  """Runs what ``path`` lacks; returns the number run now."""
  run_fn = run_fn or EpisodeRunner()
  done = 0
  with ResultsStore(path) as store:
    for run in runs:
      if run.run_id in store:
        continue
      if max_runs is not None and done >= max_runs:
        break
      record = dict(run_fn(run), run_id=run.run_id,
                    config=dataclasses.asdict(run))
      store.append(record)
      done += 1
  return done


def summary(records: Sequence[dict], runs: Sequence[EpisodeRun]) -> str:
  """Markdown: mean query accuracy and 95% interval per backbone, dataset
  and method, and the change from the first backbone to each other one."""
  wanted = {r.run_id for r in runs}
  cells: Dict[tuple, List[float]] = {}
  for r in records:
    if r["run_id"] in wanted:
      c = r["config"]
      cells.setdefault((c["backbone"], c["dataset"], c["method"]),
                       []).append(r["accuracy"])
  backbones = list(dict.fromkeys(r.backbone for r in runs))
  datasets = list(dict.fromkeys(r.dataset for r in runs))
  methods = list(dict.fromkeys(r.method for r in runs))

  def fmt(values):
    if not values:
      return "–"
    half = 1.96 * np.std(values, ddof=1) / math.sqrt(len(values)) if len(
        values) > 1 else math.nan
    return f"{100 * np.mean(values):.1f} ± {100 * half:.1f} ({len(values)})"

  header = ["Dataset", "Method"] + [f"`{b}` acc. (%)" for b in backbones] + [
      f"`{b}` − `{backbones[0]}` (pp)" for b in backbones[1:]]
  lines = ["| " + " | ".join(header) + " |",
           "| --- | --- |" + " ---: |" * (len(header) - 2)]
  for dataset in datasets:
    for method in methods:
      vals = [cells.get((b, dataset, method), []) for b in backbones]
      deltas = [f"{100 * (np.mean(v) - np.mean(vals[0])):+.1f}"
                if v and vals[0] else "–" for v in vals[1:]]
      lines.append("| " + " | ".join([dataset, method] + [fmt(v) for v in vals]
                                     + deltas) + " |")
  return "\n".join(lines)
