"""Mean and standard deviation over seeds of each configuration's results.

Runs that differ only in their seed form one group. The standard deviation is
the sample one (``ddof=1``), ``nan`` for a single seed. Memory figures do not
depend on the seed; their mean is reported, and a spread in them would point
at a bug in the memory model or the lowering.
"""
import dataclasses
import math
from typing import Dict, Iterable, List, Optional

import numpy as np

#: The metrics that are averaged, as named in the result records.
METRICS = ("accuracy", "training_memory_bytes", "arena_bytes",
           "trainable_params", "wall_time_s", "resolution_px",
           "rewrite_time_s", "selection_modelled_bytes")


@dataclasses.dataclass(frozen=True)
class Stat:
  mean: float
  std: float
  n: int

  @classmethod
  def of(cls, values: Iterable[Optional[float]]) -> "Stat":
    vals = [float(v) for v in values if v is not None]
    if not vals:
      return cls(math.nan, math.nan, 0)
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
    return cls(float(np.mean(vals)), std, len(vals))


@dataclasses.dataclass(frozen=True)
class Group:
  """All seeds of one configuration.

  ``key`` is the configuration without its seed; ``stats`` maps each of
  ``METRICS`` to its ``Stat``; ``accuracies`` holds each seed's accuracy
  (in ``seeds``' order), for paired comparisons of groups run on the same
  seeds (the same few-shot draws).
  """
  key: Dict[str, object]
  seeds: List[int]
  stats: Dict[str, Stat]
  accuracies: List[Optional[float]] = dataclasses.field(default_factory=list)

  def accuracy_of(self) -> Dict[int, float]:
    """{seed: accuracy} of the seeds that have one."""
    return {s: a for s, a in zip(self.seeds, self.accuracies)
            if a is not None}

  def __getattr__(self, name):
    key = self.__dict__.get("key", {})
    if name in key:
      return key[name]
    raise AttributeError(name)


def _frozen(value):
  """Dict values (a run's method_options) as sorted pairs: hashable keys."""
  if isinstance(value, dict):
    return tuple(sorted(value.items()))
  return value


def _key(config: dict) -> tuple:
  return tuple(sorted((k, _frozen(v)) for k, v in config.items()
                      if k != "seed"))


def group_records(records: Iterable[dict]) -> List[Group]:
  """Groups result records over seeds, in order of first appearance."""
  buckets: Dict[tuple, List[dict]] = {}
  for r in records:
    buckets.setdefault(_key(r["config"]), []).append(r)
  groups = []
  for key, members in buckets.items():
    members = sorted(members, key=lambda r: r["config"]["seed"])
    stats = {m: Stat.of(r.get(m) for r in members) for m in METRICS}
    groups.append(Group(key=dict(key),
                        seeds=[r["config"]["seed"] for r in members],
                        stats=stats,
                        accuracies=[r.get("accuracy") for r in members]))
  return groups


def select(groups: Iterable[Group], **where) -> List[Group]:
  """The groups whose configuration matches every ``field=value`` given."""
  return [g for g in groups
          if all(g.key.get(k) == v for k, v in where.items())]
