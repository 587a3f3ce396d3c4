"""The memory budget of a sparse update, from the target board.

TinyTrain selects what to train under a budget of training state beyond
inference (:mod:`tflite_tl.sparse.cost`). On a board that budget is what is
left of the RAM once the device fit check's margin (stack, framework,
fragmentation: :func:`tflite_tl.firmware.fit.check_fit`) and everything
inference and the app need are taken out. That part does not depend on the
selection, and is measured: the arena of the FT-Last train step (the forward
pass and the head's update, the smallest training step) sharing one arena
with the predict model, as the exported trainer does, plus the sample buffer
and the variable scratch of the app (the consumers of ``python -m export``;
the export adds the firmware's other globals, ``fit.firmware_globals``).

``budget = RAM available after the margin - those consumers``.

The selection's bytes are modelled and the interpreter adds state of its own
per operator (docs/tinytrain.md), so the export must still measure the
selected train step and check the fit; this budget is where the selection
starts.
"""
import dataclasses
from typing import Dict, Mapping, Tuple

import numpy as np

from tflite_tl import lower
from tflite_tl import rewrite
from tflite_tl import tflm
from tflite_tl.devices import Device
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import package
from tflite_tl.firmware import sample_store


@dataclasses.dataclass(frozen=True)
class MemoryBudget:
  """The training-state budget a board leaves (bytes)."""
  device: str
  ram_kind: str
  ram_available: int
  ram_margin_bytes: int
  consumers: Tuple[Tuple[str, int], ...]
  budget_bytes: int

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["consumers"] = dict(self.consumers)
    return d

  def explain(self) -> str:
    parts = ", ".join(f"{name} {size:,} B" for name, size in self.consumers)
    return (f"memory budget for training state on {self.device}: "
            f"{self.budget_bytes:,} B = {self.ram_available:,} B of "
            f"{self.ram_kind} after a {self.ram_margin_bytes:,}-byte margin, "
            f"minus {parts} (arenas measured in TFLM)")


def memory_budget_for_device(device: Device, consumers: Mapping[str, int], *,
                             sram_margin: float = fit_lib.DEFAULT_SRAM_MARGIN,
                             use_external_ram: bool = False) -> MemoryBudget:
  """The budget ``device`` leaves once ``consumers`` (bytes) are in RAM.

  Raises:
    DoesNotFitError: the consumers alone do not fit (nothing is left to
      train with); the message says what to change.
  """
  result = fit_lib.check_fit(device, ram_consumers=consumers,
                             flash_consumers={}, sram_margin=sram_margin,
                             use_external_ram=use_external_ram)
  budget = result.ram_available - result.ram_needed
  if budget <= 0:
    raise fit_lib.DoesNotFitError(
        fit_lib.explain(device, result) + "\n  Nothing is left for training "
        "state beyond inference: a sparse update cannot fit, use a smaller "
        "model or resolution, or a board with more RAM.")
  return MemoryBudget(device=device.name, ram_kind=result.ram_kind,
                      ram_available=result.ram_available,
                      ram_margin_bytes=result.ram_margin_bytes,
                      consumers=result.ram_consumers,
                      budget_bytes=int(budget))


def with_samples_in_flash(consumers: Mapping[str, int], image_elements: int,
                          batch_size: int, max_samples: int
                          ) -> Dict[str, int]:
  """``consumers`` with the sample buffer kept in flash: RAM holds one batch
  of images and the records' index instead (package.BuildSpec's flash
  mode)."""
  area = sample_store.sample_area(image_elements, max_samples)
  out = {k: v for k, v in consumers.items() if k != fit_lib.SAMPLE_BUFFER}
  out[f"{fit_lib.SAMPLE_BUFFER} (one batch; samples in flash)"] = int(
      batch_size * image_elements + area.ram_index_bytes)
  return out


def inference_consumers(backbone, *, num_classes: int, batch_size: int,
                        max_samples: int, learning_rate: float = 0.01,
                        seed: int = 0, kernels: str = "builtin",
                        precision: str = "float",
                        calibration_images=None) -> Dict[str, int]:
  """What inference and the app need on the board, measured in TFLM.

  Lowers the FT-Last train step of ``backbone`` (new head of
  ``num_classes``) at ``batch_size`` and its predict model in the export's
  lowering flavor (``kernels``, ``precision``), measures both
  arenas and adds the app's sample buffer (``max_samples`` images) and
  variable scratch, as ``python -m export`` counts them.
  """
  ft_last = rewrite.apply_method(backbone, "ft_last", num_classes=num_classes,
                                 seed=seed)
  lowered = lower.lower_model(ft_last, batch_size=batch_size,
                              learning_rate=learning_rate, kernels=kernels,
                              precision=precision,
                              calibration_images=calibration_images)
  predict = lowered.predict_tflite
  arena = package.shared_arena_bytes(tflm.measure_arena(lowered.train_tflite),
                                     tflm.measure_arena(predict))
  image_elements = int(np.prod(backbone.inputs[0].shape[1:]))
  return {
      "arena of the FT-Last step and the predict model (shared head)":
          int(arena + package.ARENA_HEADROOM),
      # As package.BuildSpec.sample_buffer_bytes: uint8 pixels and a label.
      "sample buffer": int(max_samples * (image_elements + 1)),
      "variable scratch": int(max(4 * int(np.prod(p.shape))
                                  for p in lowered.param_specs)),
  }
