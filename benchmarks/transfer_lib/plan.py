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

#: Method options at the value every run had before the option existed: left
#: out of the configuration, so a run that spells one out has the id (and the
#: stored result) of the runs made without it.
_IMPLIED_OPTIONS = (("allocation", "greedy"),)


def canonical_options(options) -> Tuple[Tuple[str, Any], ...]:
  """Method options ({name: value} or pairs) as a run's configuration holds
  them: sorted, implied values left out."""
  items = options.items() if isinstance(options, dict) else (options or ())
  return tuple(sorted(item for item in items
                      if item not in _IMPLIED_OPTIONS))

KERNELS = ("builtin", "tl")
PRECISIONS = ("float", "int8")


@dataclasses.dataclass(frozen=True)
class Lowering:
  """How a run's train step is lowered (and, for int8, trained on the host).

  ``to_dict`` holds only the fields that differ from the default lowering
  (builtin kernels, float), so default runs keep their old run ids and
  arena-cache keys.
  """
  kernels: str = "builtin"
  precision: str = "float"
  qas: bool = True

  @property
  def is_default(self) -> bool:
    return self.kernels == "builtin" and self.precision == "float"

  def to_dict(self) -> Dict[str, Any]:
    d: Dict[str, Any] = {}
    if self.kernels != "builtin":
      d["kernels"] = self.kernels
    if self.precision != "float":
      d["precision"] = self.precision
      d["qas"] = bool(self.qas)
    return d

  @property
  def label(self) -> str:
    """E.g. ``builtin float``, ``tl int8 QAS``, ``tl int8 no QAS``."""
    if self.precision == "float":
      return f"{self.kernels} float"
    return f"{self.kernels} int8 {'QAS' if self.qas else 'no QAS'}"


DEFAULT_LOWERING = Lowering()


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
    kernels: the lowering's kernel flavor (``lower_model(kernels=...)``):
      "builtin" or "tl". It decides the measured arena only.
    precision: "float", or "int8": the arena is the int8 train step's and
      the host training is the device's int8 step
      (``tflite_tl.lower.tl.host_training``), so accuracy describes it.
    qas: int8 only: quantization-aware scaling of the updates (False: plain
      SGD on the integer copies, the ablation).

    The three lowering fields are left out of ``to_dict`` (and the run id)
    at their defaults (builtin, float; ``qas`` whenever the precision is
    float), so runs from before they existed keep their ids.
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
  kernels: str = "builtin"
  precision: str = "float"
  qas: bool = True

  def __post_init__(self):
    object.__setattr__(self, "method_options",
                       canonical_options(self.method_options))
    if self.shots is not None and self.shots < 1:
      raise ValueError(f"shots must be >= 1 or None (full split), got "
                       f"{self.shots} for {self.method} on {self.dataset}.")
    if self.batch_size < 1 or self.epochs < 1:
      raise ValueError(f"batch_size and epochs must be >= 1, got "
                       f"batch_size={self.batch_size}, epochs={self.epochs}.")
    if self.kernels not in KERNELS or self.precision not in PRECISIONS:
      raise ValueError(f"kernels must be one of {KERNELS} and precision one "
                       f"of {PRECISIONS}, got kernels={self.kernels!r}, "
                       f"precision={self.precision!r}.")
    if self.precision == "int8" and self.kernels != "tl":
      raise ValueError(f"precision='int8' needs kernels='tl' (the host "
                       f"int8 training is the tl flavor's step), got "
                       f"kernels={self.kernels!r} for {self.method}.")
    if self.precision == "int8" and self.optimizer != "sgd":
      raise ValueError(
          f"precision='int8' trains on the host with the device's own SGD "
          f"step; optimizer must be 'sgd', got {self.optimizer!r} for "
          f"{self.method} (use --preset=int8, whose recipe is SGD).")
    if self.precision == "float" and not self.qas:
      # QAS is an int8 notion: normalise so float runs have one id.
      object.__setattr__(self, "qas", True)
    if self.resolution is not None and self.resolution < 8:
      raise ValueError(f"resolution must be >= 8 pixels or None (the "
                       f"backbone's own), got {self.resolution}.")

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d.pop("method_options")
    if self.method_options:
      d["method_options"] = dict(self.method_options)
    for name in ("kernels", "precision", "qas"):
      d.pop(name)
    d.update(self.lowering.to_dict())
    return d

  @property
  def lowering(self) -> "Lowering":
    return Lowering(self.kernels, self.precision, self.qas)

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
    low = "" if self.lowering.is_default else f" [{self.lowering.label}]"
    return (f"{self.method}{opts} {self.dataset} {self.shots_label} "
            f"seed={self.seed} bs={self.batch_size}{res}{low}")


def grid(*, backbones: Sequence[str], methods: Sequence[str],
         datasets: Sequence[str], seeds: Sequence[int],
         shots: Sequence[Optional[int]] = (None,),
         resolutions: Sequence[Optional[int]] = (None,),
         batch_sizes: Sequence[int] = (8,), epochs: int = 10,
         learning_rates: Optional[dict] = None, learning_rate: float = 1e-3,
         optimizer: str = "adam",
         method_options: Optional[dict] = None,
         lowerings: Sequence[Lowering] = (DEFAULT_LOWERING,)
         ) -> List[RunConfig]:
  """The Cartesian product of the given axes, in a fixed order.

  Seeds vary fastest, so that an interrupted sweep has complete seed sets for
  the configurations it finished. ``learning_rates`` maps a method to its own
  step size (whole-network fine-tuning wants a smaller one than a head);
  methods not in it use ``learning_rate``. ``method_options`` maps a method
  to its extra options (``RunConfig.method_options``). ``lowerings`` vary
  just outside the seeds, so each lowering's seeds finish together.
  """
  for name, axis in (("backbones", backbones), ("methods", methods),
                     ("datasets", datasets), ("seeds", seeds),
                     ("shots", shots), ("resolutions", resolutions),
                     ("batch_sizes", batch_sizes),
                     ("lowerings", lowerings)):
    if not axis:
      raise ValueError(f"The sweep axis '{name}' is empty; give at least one "
                       "value.")
  learning_rates = dict(learning_rates or {})
  method_options = dict(method_options or {})
  configs = []
  for backbone, dataset, k, res, bs, method, low, seed in itertools.product(
      backbones, datasets, shots, resolutions, batch_sizes, methods,
      lowerings, seeds):
    configs.append(RunConfig(
        backbone=backbone, method=method, dataset=dataset, seed=int(seed),
        shots=k, resolution=res, batch_size=int(bs), epochs=int(epochs),
        learning_rate=float(learning_rates.get(method, learning_rate)),
        optimizer=optimizer,
        method_options=tuple(sorted(method_options.get(method, {}).items())),
        kernels=low.kernels, precision=low.precision, qas=low.qas))
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
