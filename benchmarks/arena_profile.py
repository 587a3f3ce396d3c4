"""Measured TFLM arenas of the train step and inference, per method, vs boards.

For each method the backbone is rewritten, lowered and converted exactly as
``python -m export`` does, and each model's arena is measured by TFLM's
recording allocator (in a subprocess). ``board`` is what the exported trainer
allocates: both models in one multi-tenant arena (shared head, both tails).
"""
import dataclasses
import json
from typing import Dict, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, deterministic output
from matplotlib import pyplot as plt  # noqa: E402

from benchmarks import plotting  # noqa: E402
from tflite_tl import atomic  # noqa: E402
from tflite_tl import lower  # noqa: E402
from tflite_tl import models  # noqa: E402
from tflite_tl import rewrite  # noqa: E402
from tflite_tl import tflm  # noqa: E402
from tflite_tl.devices import Device  # noqa: E402
from tflite_tl.firmware import package  # noqa: E402
from tflite_tl.pipeline.backbone import image_shape  # noqa: E402
from tflite_tl.pipeline.backbone import load_backbone  # noqa: E402

SEGMENTS = ("train tensors (head)", "train persistent (tail)",
            "predict model extra")


@dataclasses.dataclass(frozen=True)
class MethodArena:
  method: str
  train_total: int
  train_head: int
  train_tail: int
  infer_total: int
  infer_head: int
  infer_tail: int

  @property
  def board(self) -> int:
    return (self.train_tail + self.infer_tail +
            max(self.train_head, self.infer_head))

  @property
  def segments(self) -> Dict[str, int]:
    return {SEGMENTS[0]: self.train_head, SEGMENTS[1]: self.train_tail,
            SEGMENTS[2]: self.board - self.train_total}

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["board"] = self.board
    return d


@dataclasses.dataclass(frozen=True)
class ArenaProfile:
  model: str
  resolution: int
  batch: int
  results: Sequence[MethodArena]


def profile_methods(model_name: str, methods: Sequence[str], *,
                    resolution: Optional[int] = None, batch_size: int = 1,
                    num_classes: int = 10, seed: int = 0) -> ArenaProfile:
  """Measures train-step and inference arenas of ``model_name`` per method."""
  known = rewrite.list_methods()
  unknown = [m for m in methods if m not in known]
  if unknown:
    raise ValueError(f"Unknown method(s) {unknown}. Supported: "
                     f"{', '.join(known)}.")
  shipped = models.list_pretrained()
  if model_name not in shipped and model_name not in models.list_models():
    raise ValueError(
        f"Unknown model '{model_name}'. Pretrained: {', '.join(shipped)}; "
        f"zoo: {', '.join(models.list_models())}.")
  if batch_size < 1:
    raise ValueError(f"batch size must be >= 1, got {batch_size}.")
  backbone, _ = load_backbone(model_name, model_name in shipped, resolution)
  results = []
  for method in methods:
    rewritten = rewrite.apply_method(backbone, method,
                                     num_classes=num_classes, seed=seed)
    lowered = lower.lower_model(rewritten, batch_size=batch_size,
                                learning_rate=0.01)
    train = tflm.measure_arena(lowered.train_tflite)
    infer = tflm.measure_arena(lowered.predict_tflite)
    results.append(MethodArena(method, train.total, train.head, train.tail,
                               infer.total, infer.head, infer.tail))
  return ArenaProfile(model_name, image_shape(backbone)[0], batch_size,
                      tuple(results))


def _fits(arena: MethodArena, device: Device) -> bool:
  return package.board_arena_bytes(arena.board) <= device.usable_sram_bytes


def to_json(profile: ArenaProfile, devices: Mapping[str, Device]) -> str:
  return json.dumps({
      "model": profile.model, "resolution": profile.resolution,
      "batch": profile.batch,
      "source": "measured (TFLM recording allocator)",
      "arena_headroom_bytes": package.ARENA_HEADROOM,
      "devices": {n: {"usable_sram_bytes": d.usable_sram_bytes,
                      "sram_bytes": d.sram_bytes}
                  for n, d in devices.items()},
      "methods": [dict(r.to_dict(), fits={n: _fits(r, d)
                                          for n, d in devices.items()})
                  for r in profile.results],
  }, indent=2, sort_keys=True) + "\n"


def to_markdown(profile: ArenaProfile, devices: Mapping[str, Device]) -> str:
  names = list(devices)
  head = (["method", "train arena B", "inference arena B", "board arena B"]
          + [f"{n} ({devices[n].usable_sram_bytes // 1024} KB)"
             for n in names])
  lines = [f"Measured TFLM arenas: {profile.model}, {profile.resolution} px, "
           f"batch {profile.batch}. Board arena = both models in one "
           "multi-tenant arena; a board column says whether it plus "
           f"{package.ARENA_HEADROOM} B headroom fits the usable SRAM "
           "(python -m export also keeps a margin for stack and buffers).",
           "",
           "| " + " | ".join(head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
  for r in profile.results:
    cells = [r.method, r.train_total, r.infer_total, r.board]
    cells += ["fits" if _fits(r, devices[n]) else "no" for n in names]
    lines.append("| " + " | ".join(str(c) for c in cells) + " |")
  return "\n".join(lines) + "\n"


def plot(path: str, profile: ArenaProfile,
         devices: Mapping[str, Device]) -> None:
  """Stacked bars per method with each board's usable SRAM as a line.

  Written to a temporary file and renamed, so a failure leaves no file.
  """
  results = profile.results
  fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(results), 4.5), dpi=100)
  x = list(range(len(results)))
  bottom = [0.0] * len(results)
  colors = ("#4C72B0", "#DD8452", "#55A868")
  for seg, color in zip(SEGMENTS, colors):
    vals = [r.segments[seg] / 1024 for r in results]
    ax.bar(x, vals, bottom=bottom, label=seg, color=color, width=0.6)
    bottom = [b + v for b, v in zip(bottom, vals)]
  styles = ("--", ":", "-.", (0, (5, 1)), (0, (1, 1)))
  for i, (name, dev) in enumerate(devices.items()):
    ax.axhline(dev.usable_sram_bytes / 1024, color="black",
               linestyle=styles[i % len(styles)], linewidth=1,
               label=f"{name} usable SRAM")
  ax.set_xticks(x)
  ax.set_xticklabels([r.method for r in results], rotation=20)
  ax.set_ylabel("KB")
  ax.set_title(f"TFLM arena: {profile.model}, {profile.resolution} px, "
               f"batch {profile.batch}")
  # Below the bars, inside the figure: inside the axes it hid the bars.
  handles, labels = ax.get_legend_handles_labels()
  plotting.place_legend(fig, handles, labels, fontsize=7)
  try:
    with atomic.replacing(path) as tmp:
      # No software/date metadata: identical inputs give identical bytes.
      fig.savefig(tmp, format="png", metadata={"Software": None})
  finally:
    plt.close(fig)
