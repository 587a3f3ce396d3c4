"""N-way K-shot few-shot tasks (episodes) with query sets.

An episode picks ``ways`` classes, ``shots`` labelled support images and
``queries`` query images of each (disjoint), and relabels the classes
0..ways-1 in the order drawn. It is the unit of few-shot evaluation
(fine-tune on the support set, measure on the query set) and of episodic
meta-training (ProtoNet, :mod:`tflite_tl.train.episodic`). Episode ``i`` of
``episodes(..., seed=s)`` depends on ``(s, i)`` only, so a sweep of
episodes is reproducible and can be resumed or extended.
"""
import dataclasses
from typing import List, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Episode:
  """One N-way K-shot task. ``classes[j]`` is the source class of label j."""
  classes: Tuple[int, ...]
  support_x: np.ndarray
  support_y: np.ndarray
  query_x: np.ndarray
  query_y: np.ndarray

  @property
  def ways(self) -> int:
    return len(self.classes)

  @property
  def shots(self) -> int:
    return len(self.support_y) // self.ways


def _check(x, y, ways, shots, queries):
  y = np.asarray(y)
  if len(x) != len(y):
    raise ValueError(f"episodes: x has {len(x)} samples but y has {len(y)}.")
  for name, value, low in (("ways", ways, 2), ("shots", shots, 1),
                           ("queries", queries, 1)):
    if not isinstance(value, (int, np.integer)) or value < low:
      raise ValueError(f"episodes: {name} must be an integer >= {low}, got "
                       f"{value!r}.")
  classes, counts = np.unique(y, return_counts=True)
  usable = classes[counts >= shots + queries]
  if len(usable) < ways:
    raise ValueError(
        f"episodes: {ways}-way {shots}-shot tasks with {queries} queries need "
        f"{ways} classes with >= {shots + queries} samples; only "
        f"{len(usable)} of the {len(classes)} classes have that many (fewest: "
        f"{counts.min()}). Lower ways, shots or queries, or use a larger "
        "split.")
  return y, usable


def sample_episode(x: np.ndarray, y: np.ndarray, *, ways: int, shots: int,
                   queries: int, rng: np.random.RandomState) -> Episode:
  """One episode drawn with ``rng`` (see the module docstring)."""
  y, usable = _check(x, y, ways, shots, queries)
  classes = rng.choice(usable, ways, replace=False)
  support, query = [], []
  for label, c in enumerate(classes):
    idx = np.flatnonzero(y == c)
    idx = idx[rng.permutation(len(idx))[:shots + queries]]
    support.append((np.sort(idx[:shots]), label))
    query.append((np.sort(idx[shots:]), label))

  def stack(parts):
    index = np.concatenate([i for i, _ in parts])
    labels = np.concatenate([np.full(len(i), l, np.int64) for i, l in parts])
    return np.asarray(x[index]), labels

  sx, sy = stack(support)
  qx, qy = stack(query)
  return Episode(tuple(int(c) for c in classes), sx, sy, qx, qy)


def episodes(x: np.ndarray, y: np.ndarray, *, ways: int = 5, shots: int = 5,
             queries: int = 15, count: int = 1, seed: int = 0,
             start: int = 0) -> List[Episode]:
  """Episodes ``start .. start+count-1`` of the seeded sequence."""
  if not isinstance(count, (int, np.integer)) or count < 1:
    raise ValueError(f"episodes: count must be a positive integer, got "
                     f"{count!r}.")
  _check(x, y, ways, shots, queries)
  return [sample_episode(x, y, ways=ways, shots=shots, queries=queries,
                         rng=np.random.RandomState([seed, start + i]))
          for i in range(count)]
