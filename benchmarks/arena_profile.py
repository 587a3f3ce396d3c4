"""Measured TFLM arenas of the train step and inference, per method, vs boards.

For each method the backbone is rewritten, lowered and converted exactly as
``python -m export`` does, and each model's arena is measured by TFLM's
recording allocator (in a subprocess). ``board`` is what the exported trainer
allocates: both models in one multi-tenant arena (shared head, both tails).

The lowering is ``lower_model``'s: ``kernels`` "builtin" or "tl" (the TL_*
training kernels, run by the native TFLM runner built from ``TFLM_ROOT``),
``precision`` "float" or "int8" (with ``qas`` for "tl"; builtin int8 stores
the frozen kernels int8 and computes in float32). int8 scales are calibrated on
seeded uniform random images: arena and flash sizes do not depend on the
scale values. With ``int8_inference`` the int8 inference model
(``infer.tflite``, ``lower.quantize_int8``) is converted and measured too, so
the train step can be held against what inference alone needs.
"""
import dataclasses
import json
from typing import Dict, List, Mapping, Optional, Sequence

import matplotlib
import numpy as np

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


#: Targets of the int8 step (quantized-training issue): the train step's
#: arena at most this multiple of int8 inference's, its flash at most this
#: multiple of infer.tflite's.
TARGET_ARENA_VS_INT8_INFERENCE = 2.0
TARGET_FLASH_VS_INFER = 1.3
#: Calibration images (seeded uniform random) for int8 scales.
NUM_CALIBRATION = 16


@dataclasses.dataclass(frozen=True)
class MethodArena:
  """Measured arenas (bytes) of one method's models; ``infer_*`` is the
  predict model lowered with the train step, ``int8_infer_*`` the int8
  inference model (``infer.tflite``; 0 when not measured)."""
  method: str
  train_total: int
  train_head: int
  train_tail: int
  infer_total: int
  infer_head: int
  infer_tail: int
  train_ops: int = 0
  train_tflite_bytes: int = 0
  predict_tflite_bytes: int = 0
  infer_tflite_bytes: int = 0
  int8_infer_total: int = 0
  int8_infer_head: int = 0
  int8_infer_tail: int = 0

  @property
  def arena_vs_int8_inference(self) -> float:
    return (self.train_total / self.int8_infer_total
            if self.int8_infer_total else float("nan"))

  @property
  def flash_vs_infer(self) -> float:
    return (self.train_tflite_bytes / self.infer_tflite_bytes
            if self.infer_tflite_bytes else float("nan"))

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
    if self.int8_infer_total:
      d["arena_vs_int8_inference"] = round(self.arena_vs_int8_inference, 3)
      d["flash_vs_infer"] = round(self.flash_vs_infer, 3)
    return d


@dataclasses.dataclass(frozen=True)
class ArenaProfile:
  model: str
  resolution: int
  batch: int
  results: Sequence[MethodArena]
  kernels: str = "builtin"
  precision: str = "float"
  qas: bool = True

  @property
  def lowering(self) -> str:
    """E.g. ``builtin float``, ``tl int8 QAS``."""
    if self.precision == "float":
      return f"{self.kernels} float"
    if self.kernels == "builtin":
      return "builtin int8 weights"
    return f"{self.kernels} int8 {'QAS' if self.qas else 'no QAS'}"


def calibration_images(shape: Sequence[int], seed: int) -> np.ndarray:
  """Seeded uniform images in [0, 1] for the int8 scales."""
  return np.random.RandomState(seed).rand(
      NUM_CALIBRATION, *shape).astype(np.float32)


def profile_methods(model_name: str, methods: Sequence[str], *,
                    resolution: Optional[int] = None, batch_size: int = 1,
                    num_classes: int = 10, seed: int = 0,
                    kernels: str = "builtin", precision: str = "float",
                    qas: bool = True, int8_inference: bool = False,
                    int8_chunk_elements: Optional[int] = (
                        lower.INT8_CHUNK_ELEMENTS)
                    ) -> ArenaProfile:
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
  images = calibration_images(backbone.input_shape[1:], seed)
  results = []
  for method in methods:
    rewritten = rewrite.apply_method(backbone, method,
                                     num_classes=num_classes, seed=seed)
    lowered = lower.lower_model(rewritten, batch_size=batch_size,
                                learning_rate=0.01, kernels=kernels,
                                precision=precision, qas=qas,
                                calibration_images=images,
                                int8_chunk_elements=int8_chunk_elements)
    train = tflm.measure_arena(lowered.train_tflite)
    infer = tflm.measure_arena(lowered.predict_tflite)
    extra = {}
    if int8_inference:
      infer_tflite = lower.quantize_int8(rewritten, images)
      int8 = tflm.measure_arena(infer_tflite)
      extra = dict(infer_tflite_bytes=len(infer_tflite),
                   int8_infer_total=int8.total, int8_infer_head=int8.head,
                   int8_infer_tail=int8.tail)
    results.append(MethodArena(
        method, train.total, train.head, train.tail, infer.total,
        infer.head, infer.tail, train_ops=sum(lowered.train_ops().values()),
        train_tflite_bytes=len(lowered.train_tflite),
        predict_tflite_bytes=len(lowered.predict_tflite), **extra))
  return ArenaProfile(model_name, image_shape(backbone)[0], batch_size,
                      tuple(results), kernels=kernels, precision=precision,
                      qas=qas)


def _fits(arena: MethodArena, device: Device) -> bool:
  return package.board_arena_bytes(arena.board) <= device.usable_sram_bytes


def to_json(profile: ArenaProfile, devices: Mapping[str, Device]) -> str:
  return json.dumps({
      "model": profile.model, "resolution": profile.resolution,
      "batch": profile.batch, "kernels": profile.kernels,
      "precision": profile.precision, "qas": profile.qas,
      "source": "measured (TFLM recording allocator)",
      "arena_headroom_bytes": package.ARENA_HEADROOM,
      "devices": {n: {"usable_sram_bytes": d.usable_sram_bytes,
                      "sram_bytes": d.sram_bytes}
                  for n, d in devices.items()},
      "methods": [dict(r.to_dict(), fits={n: _fits(r, d)
                                          for n, d in devices.items()})
                  for r in profile.results],
      "targets": {"arena_vs_int8_inference": TARGET_ARENA_VS_INT8_INFERENCE,
                  "flash_vs_infer": TARGET_FLASH_VS_INFER},
  }, indent=2, sort_keys=True) + "\n"


def to_markdown(profile: ArenaProfile, devices: Mapping[str, Device]) -> str:
  names = list(devices)
  head = (["method", "train arena B", "inference arena B", "board arena B"]
          + [f"{n} ({devices[n].usable_sram_bytes // 1024} KB)"
             for n in names])
  lines = [f"Measured TFLM arenas: {profile.model}, {profile.resolution} px, "
           f"batch {profile.batch}, lowering {profile.lowering}. Board arena = both models in one "
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
  lines += ["", *size_table(profile)]
  return "\n".join(lines) + "\n"


def _verdict(value: float, target: float) -> str:
  return f"{value:.2f}× ({'met' if value <= target else '**missed**'})"


def size_table(profile: ArenaProfile) -> List[str]:
  """Operators, arena head/tail and flash per method; with the int8
  inference model measured, the train step against it and the targets."""
  int8 = any(r.int8_infer_total for r in profile.results)
  head = ["method", "train ops", "train head B", "train tail B",
          "train.tflite B", "predict.tflite B"]
  if int8:
    head += ["infer.tflite B (int8)", "int8 inference arena B",
             f"train arena / int8 inference (≤ "
             f"{TARGET_ARENA_VS_INT8_INFERENCE:g}×)",
             f"train.tflite / infer.tflite (≤ {TARGET_FLASH_VS_INFER:g}×)"]
  lines = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
  for r in profile.results:
    cells = [r.method, f"{r.train_ops:,}", f"{r.train_head:,}",
             f"{r.train_tail:,}", f"{r.train_tflite_bytes:,}",
             f"{r.predict_tflite_bytes:,}"]
    if int8:
      cells += [f"{r.infer_tflite_bytes:,}", f"{r.int8_infer_total:,}",
                _verdict(r.arena_vs_int8_inference,
                         TARGET_ARENA_VS_INT8_INFERENCE),
                _verdict(r.flash_vs_infer, TARGET_FLASH_VS_INFER)]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def compare_markdown(base: ArenaProfile, other: ArenaProfile) -> str:
  """Per method, ``base`` against ``other`` (e.g. builtin against tl):
  operators, arena head, tail and total, and the ratios base / other."""
  lines = [f"{base.model}, {base.resolution} px, batch {base.batch}: "
           f"{base.lowering} against {other.lowering} (measured, TFLM "
           "recording allocator; ratio = first / second).", "",
           "| method | ops | head B | tail B | total B | ops ÷ | tail ÷ "
           "| total ÷ |", "|---|---|---|---|---|---|---|---|"]
  others = {r.method: r for r in other.results}
  for r in base.results:
    o = others.get(r.method)
    if o is None:
      continue
    lines.append(
        f"| {r.method} | {r.train_ops:,} / {o.train_ops:,} "
        f"| {r.train_head:,} / {o.train_head:,} "
        f"| {r.train_tail:,} / {o.train_tail:,} "
        f"| {r.train_total:,} / {o.train_total:,} "
        f"| {r.train_ops / max(o.train_ops, 1):.1f} "
        f"| {r.train_tail / max(o.train_tail, 1):.1f} "
        f"| {r.train_total / max(o.train_total, 1):.1f} |")
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
