"""The TFLM adapters (tflm_kernels/tflm/) compile against real TFLM headers.

`g++ -fsyntax-only -Wall -Wextra -Werror` with TFLM's own compile flags and
include paths (TFLM_ROOT's README.tflite-tl.md), for every adapter and for a
firmware-style use of AddTrainingOps (the template only compiles when
instantiated). TFLM's include directories are passed with -isystem: its
headers have unused parameters that -Wextra would report as ours.

Every TFLM header costs ~4 s of parsing (the flatbuffer schema), so the
heaviest one, micro_mutable_op_resolver.h, is precompiled once and
pre-included in the sources that include it anyway (through
training_ops.h): what they see is unchanged, the check twice as fast.
"""
import concurrent.futures
import os
import pathlib
import shutil
import subprocess

import pytest

from tflite_tl.kernels import tflm_ops

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TFLM_ROOT = os.environ.get("TFLM_ROOT")

pytestmark = pytest.mark.skipif(
    not _TFLM_ROOT or not (pathlib.Path(_TFLM_ROOT) / "tensorflow" / "lite" / "micro").is_dir(),
    reason="TFLM_ROOT is not set to a tflite-micro source tree")

# From `make print-CXXFLAGS print-INCLUDES` of TFLM's Makefile (host target).
_TFLM_FLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
               "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON",
               "-DKERNELS_OPTIMIZED_FOR_SPEED", "-DTF_LITE_USE_CTIME"]
_WARNINGS = ["-Wall", "-Wextra", "-Werror"]

_RESOLVER_USE = """
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_kernels/tflm/training_ops.h"

TfLiteStatus SetUpOps() {
  static tflite::MicroMutableOpResolver<2 + tflite_tl::tflm::kNumTrainingOps> resolver;
  if (resolver.AddConv2D() != kTfLiteOk) return kTfLiteError;
  if (resolver.AddFullyConnected() != kTfLiteOk) return kTfLiteError;
  return tflite_tl::tflm::AddTrainingOps(resolver);
}
"""


def _includes(root: pathlib.Path):
  downloads = root / "tensorflow" / "lite" / "micro" / "tools" / "make" / "downloads"
  dirs = [root, downloads, downloads / "gemmlowp", downloads / "flatbuffers" / "include",
          downloads / "kissfft", downloads / "ruy"]
  return [f"-I{_REPO}"] + [arg for d in dirs for arg in ("-isystem", str(d))]


def test_adapters_compile_against_tflm_headers(tmp_path):
  cxx = shutil.which(os.environ.get("CXX", "g++"))
  assert cxx, "g++ is required (apt-get install g++)"
  use = tmp_path / "resolver_use.cc"
  use.write_text(_RESOLVER_USE)
  sources = sorted((tflm_ops.KERNELS_DIR / "tflm").glob("*.cc")) + [use]
  flags = _TFLM_FLAGS + _WARNINGS + _includes(pathlib.Path(_TFLM_ROOT).resolve())
  pch = tmp_path / "tflm_resolver.h"
  pch.write_text('#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n')

  def run(args):
    proc = subprocess.run([cxx, *flags, *args], capture_output=True, text=True, check=False)
    return proc.returncode, proc.stderr

  def check(source, prefix=()):
    return (source.name, *run([*prefix, "-fsyntax-only", str(source)]))

  uses_pch = [s for s in sources if '"tflm_kernels/tflm/training_ops.h"' in s.read_text()]
  try:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
      built = pool.submit(run, ["-x", "c++-header", str(pch), "-o", f"{pch}.gch"])
      plain = [pool.submit(check, s) for s in sources if s not in uses_pch]
      rc, err = built.result()
      assert rc == 0, f"precompiling micro_mutable_op_resolver.h failed:\n{err[-3000:]}"
      results = [f.result() for f in plain]
      results += pool.map(lambda s: check(s, ("-include", str(pch))), uses_pch)
  finally:
    pathlib.Path(f"{pch}.gch").unlink(missing_ok=True)  # ~270 MB
  failures = [f"{name}:\n{err[-3000:]}" for name, rc, err in results if rc != 0]
  assert not failures, "\n".join(failures)
  # Every registered op's adapter was among the checked files.
  assert {spec.source for spec in tflm_ops.OPS.values()} <= {name for name, _, _ in results}
