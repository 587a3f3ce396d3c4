import os
import shutil
import subprocess

import pytest

from tflite_tl.firmware import c_array

MAIN = r"""
#include <cstdint>
#include <cstdio>
#include "blob.h"
int main() {
  if (reinterpret_cast<uintptr_t>(g_blob) % 16 != 0) return 2;
  unsigned sum = 0;
  for (size_t i = 0; i < g_blob_len; ++i) sum = sum * 31 + g_blob[i];
  std::printf("%zu %u\n", g_blob_len, sum);
  return 0;
}
"""


def test_array_compiles_aligned_and_round_trips(tmp_path):
  gxx = shutil.which("g++")
  if gxx is None:
    pytest.skip("g++ not installed")
  data = bytes((i * 37 + 11) % 256 for i in range(1001))
  files = c_array.c_array_files(data, "g_blob", "blob", comment="test blob")
  assert sorted(files) == ["blob.cc", "blob.h"]
  for name, text in files.items():
    (tmp_path / name).write_text(text)
  (tmp_path / "main.cc").write_text(MAIN)
  exe = str(tmp_path / "a.out")
  subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror",
                  "-I", str(tmp_path), str(tmp_path / "blob.cc"),
                  str(tmp_path / "main.cc"), "-o", exe], check=True)
  out = subprocess.run([exe], capture_output=True, text=True, check=True)
  expected = 0
  for b in data:
    expected = (expected * 31 + b) % 2**32
  assert out.stdout.split() == [str(len(data)), str(expected)]


def test_output_is_deterministic_and_const():
  a = c_array.c_array_files(b"\x01\x02", "g_m", "m")
  assert a == c_array.c_array_files(b"\x01\x02", "g_m", "m")
  assert "alignas(16) const uint8_t g_m[]" in a["m.cc"]
  assert "extern const size_t g_m_len;" in a["m.h"]


@pytest.mark.parametrize("symbol", ["1abc", "a-b", ""])
def test_bad_symbol_is_rejected(symbol):
  with pytest.raises(ValueError, match="identifier"):
    c_array.c_array_files(b"\x00", symbol, "x")


def test_empty_data_is_rejected():
  with pytest.raises(ValueError, match="empty"):
    c_array.c_array_files(b"", "g_x", "x")
