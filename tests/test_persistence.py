import os
import shutil
import subprocess

import pytest

from tflite_tl.firmware import persistence
from tflite_tl.flatbuffer import reader

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "test_persistence_harness.cc")


def _gxx():
  gxx = shutil.which("g++")
  if gxx is None:
    pytest.skip("g++ not installed")
  return gxx


def test_c_sources_compile_as_c_and_cpp_with_all_warnings(tmp_path):
  src = os.path.join(persistence.CSRC_DIR, "tl_persist.c")
  for compiler, lang in ((shutil.which("gcc"), ["-std=c99", "-pedantic"]),
                         (_gxx(), ["-std=c++11", "-x", "c++"])):
    subprocess.run([compiler, *lang, "-Wall", "-Wextra", "-Werror", "-c", src,
                    "-o", str(tmp_path / "p.o")], check=True)


def test_power_cut_at_every_byte_keeps_last_complete_save(tmp_path):
  exe = str(tmp_path / "harness")
  subprocess.run(
      [_gxx(), "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
       "-I", persistence.CSRC_DIR, "-x", "c++",
       os.path.join(persistence.CSRC_DIR, "tl_persist.c"), "-x", "c++",
       HARNESS, "-o", exe], check=True)
  out = subprocess.run([exe], capture_output=True, text=True)
  assert out.returncode == 0, out.stderr + out.stdout
  checks = int(out.stdout.split("checks=")[1].split()[0])
  assert checks > 40000  # every offset, 2 storage kinds, 3 program sizes


def _vars(*shapes):
  return [reader.VariableInfo("", f"v{i}", s, "FLOAT32")
          for i, s in enumerate(shapes)]


def test_schema_id_changes_with_layout():
  a = persistence.schema_id(_vars((4,), (8, 2)))
  assert a == persistence.schema_id(_vars((4,), (8, 2)))
  assert a != persistence.schema_id(_vars((4,), (2, 8)))
  assert a != persistence.schema_id(_vars((8, 2), (4,)))


def test_python_image_round_trip_and_fallback():
  slot = 128
  old = persistence.encode_slot(b"old-params", 7, 42, slot)
  new = persistence.encode_slot(b"new-params", 8, 42, slot)
  assert persistence.decode_image(old + new, slot) == (8, 42, b"new-params")
  assert persistence.decode_image(new + old, slot) == (8, 42, b"new-params")
  torn = bytearray(new)
  torn[persistence.HEADER_BYTES + 3] ^= 1
  assert persistence.decode_image(old + bytes(torn), slot)[2] == b"old-params"
  wrapped = persistence.encode_slot(b"wrapped", 0, 42, slot)
  last = persistence.encode_slot(b"last", 0xFFFFFFFF, 42, slot)
  assert persistence.decode_image(last + wrapped, slot)[2] == b"wrapped"
  assert persistence.decode_image(b"\xff" * 2 * slot, slot) is None
  with pytest.raises(ValueError, match="does not fit"):
    persistence.encode_slot(b"x" * 100, 1, 1, 128)

