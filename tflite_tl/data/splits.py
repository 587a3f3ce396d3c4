"""Deterministic stratified splits and few-shot sampling."""
from typing import Tuple

import numpy as np


def stratified_split(y: np.ndarray, test_fraction: float,
                     seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """Indices (train, test) holding ``test_fraction`` of every class out.

  Each class contributes ``round(n_c * test_fraction)`` test samples, at least
  one and at most ``n_c - 1`` when it has two or more samples, so both sides
  see every class. Indices come back sorted (the source order); the same
  ``y``, fraction and seed always give the same split.
  """
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
  y = np.asarray(y)
  rng = np.random.RandomState(seed)
  train, test = [], []
  for c in np.unique(y):
    idx = np.flatnonzero(y == c)
    idx = idx[rng.permutation(len(idx))]
    n_test = int(round(len(idx) * test_fraction))
    if len(idx) >= 2:
      n_test = min(max(n_test, 1), len(idx) - 1)
    test.append(idx[:n_test])
    train.append(idx[n_test:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def cap_per_class(indices: np.ndarray, y: np.ndarray, cap: int,
                  seed: int) -> np.ndarray:
  """At most ``cap`` of ``indices`` per class of ``y[indices]``, chosen by seed.

  Classes with fewer samples keep all of them. Returned sorted.
  """
  if not isinstance(cap, (int, np.integer)) or cap < 1:
    raise ValueError(f"max_per_class must be a positive integer, got {cap!r}.")
  rng = np.random.RandomState(seed)
  labels = np.asarray(y)[indices]
  kept = []
  for c in np.unique(labels):
    idx = indices[labels == c]
    kept.append(idx[rng.permutation(len(idx))[:cap]])
  return np.sort(np.concatenate(kept))


def few_shot(x: np.ndarray, y: np.ndarray, k: int,
             seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """``k`` samples of every class present in ``y``, chosen by ``seed``.

  The result is ordered by class, then by source index, so it is identical
  for identical inputs. Raises ValueError naming the class if one has fewer
  than ``k`` samples.
  """
  y = np.asarray(y)
  if len(x) != len(y):
    raise ValueError(f"x has {len(x)} samples but y has {len(y)}.")
  if not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}.")
  rng = np.random.RandomState(seed)
  chosen = []
  for c in np.unique(y):
    idx = np.flatnonzero(y == c)
    if len(idx) < k:
      raise ValueError(
          f"few_shot(k={k}): class {c} has only {len(idx)} samples. Use "
          f"k <= {len(idx)} or a larger split.")
    chosen.append(np.sort(idx[rng.permutation(len(idx))[:k]]))
  chosen = np.concatenate(chosen)
  return x[chosen], y[chosen]
