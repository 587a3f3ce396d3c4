"""Instruction counts of the exported firmware in QEMU, per train step and
per prediction (``python -m tflite_tl.firmware.qemu_bench``).

``measure(spec, work)`` builds, links and runs the export's firmware
(``instruction_counts.measure``: the library with the QEMU driver, compiled
for Cortex-M4F, linked with the spec's board flash and SRAM as the linker's
regions, a scripted session in ``qemu-system-arm -M mps2-an386 -icount``)
and puts the fit check's figures (with the modelled firmware-globals
allowance, as an export without ``--instruction_counts`` reports them)
beside ``arm-none-eabi-size``'s. ``tiny_export`` packages the shipped
``tiny`` backbone the way the export does (kernel flavor and precision
chosen by the caller), for the benchmark and the tests. Needs
``TFLM_ROOT``, gcc-arm-none-eabi and qemu-system-arm.
"""
import dataclasses
import pathlib
import sys
import tempfile
from typing import Dict, Optional

import numpy as np
from absl import app
from absl import flags

import tflite_tl as tl
from tflite_tl import devices
from tflite_tl import flatbuffer
from tflite_tl import tflm
from tflite_tl.firmware import cortex_m
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import instruction_counts
from tflite_tl.firmware import package
from tflite_tl.lower import lower_model
from tflite_tl.lower import quantize
from tflite_tl.tflm.runner import train_inputs_order

NUM_CLASSES = 4
CLASS_NAMES = tuple(f"class{i}" for i in range(NUM_CLASSES))


def random_images(n: int, resolution: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (n, resolution, resolution, 1))
          / 255.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class TinyExport:
  spec: package.BuildSpec
  model: object    # the Keras model that was lowered
  lowered: object  # its LoweredModel


def tiny_export(kernels: str = "tl", precision: str = "float",
                resolution: int = 16, batch: int = 2,
                method: str = "tinytl_lb", device: str = "nano33ble",
                max_samples: int = 16, learning_rate: float = 0.05,
                arena: Optional[int] = None,
                sample_storage: str = "ram") -> TinyExport:
  """``tiny`` (a new NUM_CLASSES head) packaged as the export packages it;
  the arenas measured in TFLM unless ``arena`` is given."""
  backbone = tl.load_pretrained("tiny", resolution=resolution)
  model = tl.apply_method(backbone, method, num_classes=NUM_CLASSES)
  calibration = random_images(16, resolution, seed=1)
  lowered = lower_model(model, batch_size=batch, learning_rate=learning_rate,
                        kernels=kernels, precision=precision,
                        calibration_images=calibration
                        if precision == "int8" else None)
  int8 = quantize.quantize_int8(model, calibration)
  if arena is None:
    arena = package.shared_arena_bytes(
        tflm.measure_arena(lowered.train_tflite),
        tflm.measure_arena(lowered.predict_tflite))
  images_idx, labels_idx = train_inputs_order(lowered.train_tflite)
  spec = package.BuildSpec(
      name=f"tiny_{kernels}_{precision}", model_name="tiny", method=method,
      device=devices.get_device(device), train_tflite=lowered.train_tflite,
      predict_tflite=lowered.predict_tflite, infer_int8_tflite=int8,
      train_info=flatbuffer.model_info(lowered.train_tflite),
      predict_info=flatbuffer.model_info(lowered.predict_tflite),
      infer_int8_info=flatbuffer.model_info(int8),
      train_images_input=images_idx, train_labels_input=labels_idx,
      batch_size=batch, image_shape=(resolution, resolution, 1),
      class_names=CLASS_NAMES, arena=arena, max_samples=max_samples,
      sample_storage=sample_storage)
  package.check_variables(spec)
  return TinyExport(spec, model, lowered)


def measure(spec: package.BuildSpec, work: pathlib.Path,
            predictions: int = 2, steps: int = 2) -> Dict[str, object]:
  """Builds, links and runs the firmware of ``spec`` in QEMU
  (``instruction_counts.measure``); the margin between the fit check's
  figures (modelled globals) and the linked ones."""
  run = instruction_counts.measure(spec, work, predictions, steps)
  ram, flash = package.memory_consumers(spec)
  result = fit_lib.check_fit(spec.device, ram_consumers=ram,
                             flash_consumers=flash)
  margin = cortex_m.fit_margin(spec.device, result, run.sizes,
                               spec.storage_region_bytes, run.ram)
  return {"kernels": spec.kernels, "images_int8": spec.images_int8,
          "device": spec.device.name, "batch": spec.batch_size,
          "image_shape": list(spec.image_shape), "arena_bytes":
          spec.arena_bytes, "per_train_step": run.per_train_step,
          "per_prediction": run.per_prediction, "begin": run.begin,
          "globals_bytes": run.globals_bytes,
          "sizes": dataclasses.asdict(run.sizes),
          "ram_sections": dataclasses.asdict(run.ram), "fit": margin.to_dict(),
          "lines": run.lines}


def _define_flags():
  """Flags of the command line only: a test process imports this module
  beside other CLIs' flags."""
  flags.DEFINE_list("kernels", ["builtin", "tl"], "Kernel flavors to measure.")
  flags.DEFINE_list("precision", ["float"],
                    "Precisions (int8 needs kernels=tl).")
  flags.DEFINE_integer("resolution", 16, "Input side in pixels.")
  flags.DEFINE_integer("batch", 2, "Train batch size.")
  flags.DEFINE_string("method", "tinytl_lb", "Transfer method.")


def main(argv):
  del argv
  cfg = flags.FLAGS
  print("| kernels | precision | batch | arena B | instructions per train "
        "step | per prediction | text B | data B | bss B | globals B | "
        "fit RAM B | linked RAM B |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for kernels in cfg.kernels:
    for precision in cfg.precision:
      if precision != "float" and kernels != "tl":
        continue
      export = tiny_export(kernels, precision, resolution=cfg.resolution,
                           batch=cfg.batch, method=cfg.method)
      with tempfile.TemporaryDirectory(prefix="tflite_tl_qemu_bench_") as tmp:
        r = measure(export.spec, pathlib.Path(tmp))
      s = r["sizes"]
      print(f"| {kernels} | {precision} | {r['batch']} | {r['arena_bytes']} "
            f"| {r['per_train_step']:.0f} | {r['per_prediction']:.0f} | "
            f"{s['text']} | {s['data']} | {s['bss']} | "
            f"{r['globals_bytes']} | {r['fit']['report_ram']} | {r['fit']['linked_ram']} |")
      sys.stdout.flush()


if __name__ == "__main__":
  _define_flags()
  app.run(main)
