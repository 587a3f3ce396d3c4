"""The grid of benchmark runs, each identified by a stable run id.

A run id is a hash of the run's full configuration, so it is the same in every
process and on every machine: a restarted sweep recognises finished runs by id
and a changed recipe (epochs, learning rate, ...) is a new run rather than a
stale match.
"""
import dataclasses
import hashlib
import itertools
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

#: Bump when the meaning of a configuration field changes, so that results of
#: the old meaning are not mistaken for results of the new one.
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything that determines one fine-tuning run.

  Attributes:
    backbone: name of a shipped pretrained backbone (``tflite_tl.models``).
    method: transfer method (``tflite_tl.rewrite.list_methods()``).
    dataset: target dataset name or image-folder path (``tflite_tl.data``).
    seed: seed of the few-shot draw, the new head and the training order.
    shots: training images per class (few-shot), or ``None`` for the full
      training split.
    resolution: input side in pixels, or ``None`` for the backbone's own.
    batch_size: training batch size (also the batch of the memory figures).
    epochs: passes over the training split.
    learning_rate: optimiser step size.
    optimizer: optimiser name understood by ``tflite_tl.train.fit``.
    method_options: extra options of the method (e.g. tinytrain's
      ``memory_budget`` and ``criterion``) as sorted (name, value) pairs.
      Left out of ``to_dict`` (and so of the run id) when empty, so runs
      without options keep the ids they always had.
  """
  backbone: str
  method: str
  dataset: str
  seed: int
  shots: Optional[int] = None
  resolution: Optional[int] = None
  batch_size: int = 8
  epochs: int = 10
  learning_rate: float = 1e-3
  optimizer: str = "adam"
  method_options: Tuple[Tuple[str, Any], ...] = ()

  def __post_init__(self):
    if isinstance(self.method_options, dict):
      object.__setattr__(self, "method_options",
                         tuple(sorted(self.method_options.items())))
    if self.shots is not None and self.shots < 1:
      raise ValueError(f"shots must be >= 1 or None (full split), got "
                       f"{self.shots} for {self.method} on {self.dataset}.")
    if self.batch_size < 1 or self.epochs < 1:
      raise ValueError(f"batch_size and epochs must be >= 1, got "
                       f"batch_size={self.batch_size}, epochs={self.epochs}.")
    if self.resolution is not None and self.resolution < 8:
      raise ValueError(f"resolution must be >= 8 pixels or None (the "
                       f"backbone's own), got {self.resolution}.")

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d.pop("method_options")
    if self.method_options:
      d["method_options"] = dict(self.method_options)
    return d

  @property
  def options(self) -> Dict[str, Any]:
    return dict(self.method_options)

  @classmethod
  def from_dict(cls, d: dict) -> "RunConfig":
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise ValueError(f"Unknown run configuration fields {unknown}; known "
                       f"fields are {sorted(names)}.")
    d = dict(d)
    d["method_options"] = tuple(sorted(d.get("method_options", {}).items()))
    return cls(**d)

  @property
  def run_id(self) -> str:
    """A 16-hex-digit hash of the configuration (stable across processes)."""
    payload = dict(self.to_dict(), schema=SCHEMA_VERSION)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

  @property
  def shots_label(self) -> str:
    return "full" if self.shots is None else f"{self.shots}-shot"

  def describe(self) -> str:
    """Short human-readable label for progress displays and logs."""
    res = "" if self.resolution is None else f" {self.resolution}px"
    opts = "".join(f" {k}={v}" for k, v in self.method_options)
    return (f"{self.method}{opts} {self.dataset} {self.shots_label} "
            f"seed={self.seed} bs={self.batch_size}{res}")


def grid(*, backbones: Sequence[str], methods: Sequence[str],
         datasets: Sequence[str], seeds: Sequence[int],
         shots: Sequence[Optional[int]] = (None,),
         resolutions: Sequence[Optional[int]] = (None,),
         batch_sizes: Sequence[int] = (8,), epochs: int = 10,
         learning_rates: Optional[dict] = None, learning_rate: float = 1e-3,
         optimizer: str = "adam",
         method_options: Optional[dict] = None) -> List[RunConfig]:
  """The Cartesian product of the given axes, in a fixed order.

  Seeds vary fastest, so that an interrupted sweep has complete seed sets for
  the configurations it finished. ``learning_rates`` maps a method to its own
  step size (whole-network fine-tuning wants a smaller one than a head);
  methods not in it use ``learning_rate``. ``method_options`` maps a method
  to its extra options (``RunConfig.method_options``).
  """
  for name, axis in (("backbones", backbones), ("methods", methods),
                     ("datasets", datasets), ("seeds", seeds),
                     ("shots", shots), ("resolutions", resolutions),
                     ("batch_sizes", batch_sizes)):
    if not axis:
      raise ValueError(f"The sweep axis '{name}' is empty; give at least one "
                       "value.")
  learning_rates = dict(learning_rates or {})
  method_options = dict(method_options or {})
  configs = []
  for backbone, dataset, k, res, bs, method, seed in itertools.product(
      backbones, datasets, shots, resolutions, batch_sizes, methods, seeds):
    configs.append(RunConfig(
        backbone=backbone, method=method, dataset=dataset, seed=int(seed),
        shots=k, resolution=res, batch_size=int(bs), epochs=int(epochs),
        learning_rate=float(learning_rates.get(method, learning_rate)),
        optimizer=optimizer,
        method_options=tuple(sorted(method_options.get(method, {}).items()))))
  return configs


def dedupe(configs: Iterable[RunConfig]) -> List[RunConfig]:
  """Drops repeated run ids, keeping the first occurrence's position.

  Ablation grids share their baseline point with the main grid (e.g. batch 8 at
  the native resolution); it is run once.
  """
  seen, out = set(), []
  for config in configs:
    if config.run_id not in seen:
      seen.add(config.run_id)
      out.append(config)
  return out
