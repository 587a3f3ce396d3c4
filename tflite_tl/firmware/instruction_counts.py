"""Instruction counts and linked RAM of an export's firmware, for its report
(``python -m export --instruction_counts``).

``measure(spec, work)`` writes the export's Arduino library under ``work``,
compiles it with the QEMU driver for Cortex-M4F, links it with the board's
flash and SRAM as the linker's regions (``cortex_m``), runs a scripted serial
session (predictions, labelled samples, one training epoch, save, restore,
one more prediction) in ``qemu-system-arm -M mps2-an386 -icount`` and
returns the instructions per train step and per prediction,
``arm-none-eabi-size``'s figures and the RAM the firmware's globals take
beyond the arena, the sample buffer and the variable scratch (the .data and
.bss sections; the linker script's heap and stack reserves apart). QEMU's icount
clock makes the counts deterministic, so a report made of them is too.

Needs ``TFLM_ROOT``, ``arm-none-eabi-gcc`` (gcc-arm-none-eabi with newlib
and libstdc++) and ``qemu-system-arm``; ``missing_requirements`` names what
is missing. The first run builds TFLM for Cortex-M4F (minutes, cached under
``~/.cache/tflite-tl/``).
"""
import dataclasses
import pathlib
import shutil
from typing import Dict, List, Optional

import numpy as np

from tflite_tl import atomic
from tflite_tl.devices import Device
from tflite_tl.firmware import cortex_m
from tflite_tl.firmware import package
from tflite_tl.tflm import tflm_library

ARM_GCC = "arm-none-eabi-gcc"
REQUIREMENTS = (tflm_library.TFLM_ROOT_ENV, ARM_GCC, cortex_m.QEMU)
# The scripted session: predictions timed, train steps of one 'T1'.
PREDICTIONS = 2
TRAIN_STEPS = 2
QEMU_COMMAND = (f"{cortex_m.QEMU} -M mps2-an386 -icount "
                f"shift={cortex_m.ICOUNT_SHIFT} (semihosting)")


def missing_requirements() -> List[str]:
  """What of REQUIREMENTS is missing, each with how to get it."""
  missing = []
  try:
    tflm_library.tflm_root()
  except tflm_library.TflmBuildError:
    missing.append(f"{tflm_library.TFLM_ROOT_ENV} (a tflite-micro source "
                   "tree)")
  if shutil.which(ARM_GCC) is None:
    missing.append(f"{ARM_GCC} (Debian gcc-arm-none-eabi, "
                   "libnewlib-arm-none-eabi, libstdc++-arm-none-eabi-newlib)")
  if shutil.which(cortex_m.QEMU) is None:
    missing.append(f"{cortex_m.QEMU} (Debian qemu-system-arm)")
  return missing


def unsupported_device(device: Device) -> Optional[str]:
  """Why ``device``'s firmware cannot be measured here (None: it can)."""
  if not cortex_m.is_cortex_m(device):
    return (f"{device.name} ({device.mcu or 'no MCU in its profile'}) is not "
            "a Cortex-M board; the counts come from the Cortex-M4F firmware "
            "in QEMU")
  if max(device.flash_bytes,
         device.usable_sram_bytes) > cortex_m.QEMU_REGION_BYTES:
    return (f"{device.name}'s memory exceeds QEMU mps2-an386's "
            f"{cortex_m.QEMU_REGION_BYTES}-byte regions")
  return None


def library_dir(spec: package.BuildSpec, out: pathlib.Path) -> pathlib.Path:
  """Writes the export's files under ``out``; returns its Arduino src/."""
  atomic.write_tree(str(out), package.package_files(spec))
  return out / "arduino" / spec.name / "src"


def session(spec: package.BuildSpec, samples: int, epochs: int,
            predictions: int, seed: int = 0) -> bytes:
  """Predictions, labelled samples, T<epochs>, S, R and one more prediction
  on seeded random images."""
  rng = np.random.default_rng(seed)
  h, w, c = spec.image_shape
  images = rng.integers(0, 256, (samples + predictions, h * w * c), np.uint8)
  commands = [("I", images[i].tobytes()) for i in range(predictions)]
  commands += [("L", f"{i % spec.num_classes}\n".encode()
                + images[predictions + i].tobytes()) for i in range(samples)]
  commands += [("T", f"{epochs}\n".encode()), ("S", b""), ("R", b""),
               ("I", images[0].tobytes())]
  return cortex_m.session_bytes(commands)


def counted_ram(spec: package.BuildSpec) -> int:
  """The RAM the fit check counts besides the globals: arena, variable
  scratch, sample buffer (each a global of the firmware)."""
  return spec.arena_bytes + spec.scratch_bytes + spec.sample_buffer_bytes


@dataclasses.dataclass(frozen=True)
class FirmwareRun:
  """One build, link and QEMU session of an export's firmware."""
  device: str
  batch: int
  predictions: int   # 'I' commands timed (the last after 'R')
  samples: int       # labelled samples sent before 'T1'
  train_steps: int   # steps 'T1' ran
  per_train_step: int
  per_prediction: int
  begin: int         # Begin: both interpreters allocated, variables loaded
  sizes: cortex_m.Sizes
  ram: cortex_m.RamSections
  globals_bytes: int  # .data + .bss sections minus counted_ram (measured)
  lines: List[str]    # the App's answers

  def to_dict(self) -> Dict[str, object]:
    """Deterministic figures for report.json (no host paths or times)."""
    return {
        "device": self.device, "batch": self.batch,
        "per_train_step": self.per_train_step,
        "per_prediction": self.per_prediction, "begin": self.begin,
        "session": {"predictions": self.predictions, "samples": self.samples,
                    "train_steps": self.train_steps},
        "qemu": QEMU_COMMAND,
        "linked": dataclasses.asdict(self.sizes),
        "ram_sections": dataclasses.asdict(self.ram),
        "globals_bytes": self.globals_bytes,
        "source": "measured (Cortex-M4F firmware in QEMU, instructions, not "
                  "cycles)",
    }


def train_steps(spec: package.BuildSpec, steps: int = TRAIN_STEPS) -> int:
  """Steps of the session's 'T1': ``steps`` batches, as many as the sample
  buffer holds."""
  return max(1, min(steps, spec.max_samples // spec.batch_size))


def measure(spec: package.BuildSpec, work: pathlib.Path,
            predictions: int = PREDICTIONS,
            steps: int = TRAIN_STEPS) -> FirmwareRun:
  """Builds, links and runs the firmware of ``spec`` in QEMU.

  Raises:
    cortex_m.LinkError: the firmware does not fit the board's regions.
    TflmBuildError: no TFLM_ROOT or toolchain, a compile error, or the
      session did not finish in QEMU.
  """
  work = pathlib.Path(work)
  src = library_dir(spec, work / "export")
  objects = cortex_m.compile_firmware(src, work / "obj")
  elf = cortex_m.link_firmware(objects, spec.device, spec.storage_region_bytes,
                               work / f"{spec.device.name}.elf")
  steps = train_steps(spec, steps)
  samples = steps * spec.batch_size
  run = cortex_m.run_session(elf, session(spec, samples, 1, predictions))
  counts = cortex_m.instruction_counts(run, {0: steps})
  sizes = cortex_m.size(elf)
  ram = cortex_m.ram_sections(elf)
  return FirmwareRun(
      device=spec.device.name, batch=spec.batch_size,
      predictions=len(run.of("I")), samples=samples, train_steps=steps,
      per_train_step=int(round(counts["per_train_step"])),
      per_prediction=int(round(counts["per_prediction"])),
      begin=int(round(counts["begin"])), sizes=sizes, ram=ram,
      globals_bytes=ram.globals - counted_ram(spec), lines=list(run.lines))
