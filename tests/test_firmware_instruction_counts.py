"""What ``export --instruction_counts`` needs, and the deterministic figures
it reports (the QEMU run itself: tests/test_firmware_cortex_m.py and the
slow export test in tests/test_pipeline_export.py)."""
import dataclasses
import json
import os
import types

from tflite_tl import devices
from tflite_tl.firmware import cortex_m
from tflite_tl.firmware import instruction_counts


def _bin(directory, *names):
  """A PATH directory with stand-ins for ``names``."""
  bin_dir = directory / "bin"
  bin_dir.mkdir(parents=True)
  for name in names:
    (bin_dir / name).write_text("#!/bin/sh\n")
    os.chmod(bin_dir / name, 0o755)
  return str(bin_dir)


def test_missing_requirements_name_each_and_how_to_get_it(tmp_path,
                                                          monkeypatch):
  monkeypatch.delenv("TFLM_ROOT", raising=False)
  monkeypatch.setenv("PATH", _bin(tmp_path))
  missing = instruction_counts.missing_requirements()
  assert [m.split()[0] for m in missing] == list(
      instruction_counts.REQUIREMENTS)
  assert "gcc-arm-none-eabi" in missing[1] and "qemu-system-arm" in missing[2]
  monkeypatch.setenv("TFLM_ROOT", str(tmp_path))  # not a tflite-micro tree
  monkeypatch.setenv("PATH", _bin(tmp_path / "tools", "arm-none-eabi-gcc",
                                  "qemu-system-arm"))
  assert instruction_counts.missing_requirements() == [
      "TFLM_ROOT (a tflite-micro source tree)"]


def test_only_cortex_m_boards_within_qemus_regions():
  assert instruction_counts.unsupported_device(
      devices.get_device("nano33ble")) is None
  assert "not a Cortex-M board" in instruction_counts.unsupported_device(
      devices.get_device("esp32"))
  big = dataclasses.replace(devices.get_device("stm32h743"),
                            flash_bytes=8 * 1024 * 1024)
  assert "exceeds QEMU" in instruction_counts.unsupported_device(big)


def test_report_figures_are_deterministic_and_path_free():
  run = instruction_counts.FirmwareRun(
      device="nano33ble", batch=2, predictions=3, samples=4, train_steps=2,
      per_train_step=3133880, per_prediction=828773, begin=769120,
      sizes=cortex_m.Sizes(217080, 2792, 70392),
      ram=cortex_m.RamSections(2776, 58104, 4096, 8192), globals_bytes=4800,
      lines=["ready"])
  d = run.to_dict()
  assert "lines" not in d and d["ram_sections"]["stack"] == 8192
  assert d["qemu"] == ("qemu-system-arm -M mps2-an386 -icount shift=0 "
                       "(semihosting)")
  text = json.dumps(d, sort_keys=True)
  assert "/tmp" not in text and os.path.expanduser("~") not in text


def test_session_steps_fit_the_sample_buffer():
  spec = types.SimpleNamespace(max_samples=16, batch_size=2)
  assert instruction_counts.train_steps(spec) == 2
  spec = types.SimpleNamespace(max_samples=3, batch_size=2)
  assert instruction_counts.train_steps(spec) == 1
  spec = types.SimpleNamespace(arena_bytes=100, scratch_bytes=20,
                               sample_buffer_bytes=3)
  assert instruction_counts.counted_ram(spec) == 123
