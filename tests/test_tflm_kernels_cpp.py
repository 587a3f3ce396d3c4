"""Builds and runs the C++ reference-kernel tests, plain and under ASan+UBSan."""
import pathlib
import shutil
import subprocess

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
# One binary: kernels_test.cc holds main(), the other files more suites
# (framework-free: no TFLM, no TF).
_TEST_SRCS = [_REPO / "tflm_kernels" / "tests" / name
              for name in ("kernels_test.cc", "update_kernels_test.cc",
                           "layer_kernels_test.cc", "inverted_residual_grad_test.cc")]
_TESTDATA = _REPO / "tflm_kernels" / "testdata"

_WARNINGS = ["-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Wno-sign-conversion",
             "-Werror"]
_VARIANTS = {
    "plain": ["-O2"],
    "asan_ubsan": ["-O1", "-g", "-fsanitize=address,undefined",
                   "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"],
}


@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_cpp_kernels(variant, tmp_path):
  cxx = shutil.which("g++")
  assert cxx, "g++ is required for the C++ kernel tests (apt-get install g++)"
  binary = tmp_path / f"kernels_test_{variant}"
  subprocess.run([cxx, "-std=c++17", *_WARNINGS, *_VARIANTS[variant], f"-I{_REPO}",
                  *map(str, _TEST_SRCS), "-o", str(binary)], check=True, capture_output=True,
                 text=True)
  proc = subprocess.run([str(binary), str(_TESTDATA)], capture_output=True, text=True,
                        env={"UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                             "ASAN_OPTIONS": "detect_leaks=1"})
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "all kernel tests passed" in proc.stdout
