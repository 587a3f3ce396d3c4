"""The flash sample store (csrc/tl_samples.c) on a RAM-emulated NOR flash,
and its layout as the export models it (tflite_tl.firmware.sample_store)."""
import os
import shutil
import subprocess

import pytest

from tflite_tl import devices
from tflite_tl.firmware import persistence
from tflite_tl.firmware import sample_store

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "test_sample_store_harness.cc")


def _compiler(name):
  path = shutil.which(name)
  if path is None:
    pytest.skip(f"{name} not installed")
  return path


def test_store_compiles_as_c_and_cpp_with_all_warnings(tmp_path):
  src = os.path.join(persistence.CSRC_DIR, "tl_samples.c")
  for compiler, lang in ((_compiler("gcc"), ["-std=c99", "-pedantic"]),
                         (_compiler("g++"), ["-std=c++11", "-x", "c++"])):
    subprocess.run([compiler, *lang, "-Wall", "-Wextra", "-Werror", "-c", src,
                    "-o", str(tmp_path / "s.o")], check=True)


def test_ring_laps_and_power_cut_at_every_byte(tmp_path):
  """Erase-before-write and program/erase alignment enforced; a cut at
  every byte of an append (and of the block erase a wrap starts) loses at
  most that sample and the block being erased, and the next append works."""
  exe = str(tmp_path / "harness")
  subprocess.run(
      [_compiler("g++"), "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
       "-I", persistence.CSRC_DIR, "-x", "c++",
       os.path.join(persistence.CSRC_DIR, "tl_persist.c"), "-x", "c++",
       os.path.join(persistence.CSRC_DIR, "tl_samples.c"), "-x", "c++",
       HARNESS, "-o", exe], check=True)
  out = subprocess.run([exe], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr + out.stdout
  checks = int(out.stdout.split("checks=")[1].split()[0])
  assert checks > 100000


def test_layout_matches_the_c_store():
  # The figures the C harness checks for tl_samples_area_bytes.
  assert sample_store.sample_area(256, 7).bytes == 8192
  area = sample_store.sample_area(9216, 16)  # 96 px, one channel
  assert area.record_bytes == 9248 and area.block_bytes == 12288
  assert area.bytes == 17 * 12288 and area.slots == 17
  assert area.kept_after_wrap >= 16
  small = sample_store.sample_area(256, 16)  # 14 records per 4 KB unit
  assert small.records_per_block == 14 and small.num_blocks == 3
  assert small.kept_after_wrap >= 16
  assert small.ram_index_bytes == 2 * 42 + sample_store.STORE_STATE_BYTES
  with pytest.raises(ValueError):
    sample_store.sample_area(0, 1)


@pytest.mark.parametrize("name,has", [("nano33ble", True), ("esp32", True),
                                      ("portenta_h7", True), ("pico", False),
                                      ("stm32f746", False)])
def test_boards_with_a_storage_backend(name, has):
  assert sample_store.board_has_storage(devices.get_device(name)) is has
