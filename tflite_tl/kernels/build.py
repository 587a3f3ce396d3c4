"""Builds the TensorFlow custom ops of tflm_kernels/tf/ against the TF wheel.

The ops wrap the same framework-free kernels that firmware registers with
TFLite Micro, so the host runs (and tests) the exact device arithmetic. The
shared library is cached under ``build/tflm_kernels/tf_ops/<hash>/``; the hash
covers the sources, the compiler command and the TensorFlow version, so any
change rebuilds and an unchanged tree never does.
"""
import concurrent.futures
import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
from typing import List, Optional, Sequence

from tflite_tl import atomic

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNELS_DIR = REPO_ROOT / "tflm_kernels"
LIBRARY_NAME = "tl_training_ops.so"
BUILD_DIR_ENV = "TFLITE_TL_KERNELS_BUILD_DIR"

# Warnings from TensorFlow's own headers, not from our code.
_QUIET = ["-Wno-deprecated-declarations", "-Wno-interference-size"]


class KernelBuildError(RuntimeError):
  """The custom-op library could not be compiled or linked."""


def _sources() -> List[pathlib.Path]:
  if not (KERNELS_DIR / "tf").is_dir():
    raise KernelBuildError(
        f"{KERNELS_DIR / 'tf'} not found: the TF custom ops are built from the "
        "tflite-tl source tree. Install it editable (pip install -e .) from a "
        "checkout.")
  return sorted((KERNELS_DIR / "tf").glob("*.cc"))


def _headers() -> List[pathlib.Path]:
  return sorted((KERNELS_DIR / "reference").glob("*.h"))


def _tf_flags():
  # Imported here: paths and the source hash need no TensorFlow, only the
  # compiler flags of the TF wheel do.
  from tflite_tl._compat import tf  # pylint: disable=g-import-not-at-top
  return (list(tf.sysconfig.get_compile_flags()), list(tf.sysconfig.get_link_flags()),
          tf.__version__)


def _compiler() -> str:
  cxx = os.environ.get("CXX", "g++")
  if shutil.which(cxx) is None:
    raise KernelBuildError(
        f"C++ compiler {cxx!r} not found; install g++ (apt-get install g++) or set CXX.")
  return cxx


def default_build_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get(BUILD_DIR_ENV, REPO_ROOT / "build" / "tflm_kernels"))


def _digest(cxx: str, compile_flags: Sequence[str], link_flags: Sequence[str],
            tf_version: str) -> str:
  h = hashlib.sha256()
  for part in [cxx, tf_version, *compile_flags, *link_flags, *_QUIET]:
    h.update(part.encode() + b"\0")
  for path in _sources() + _headers():
    h.update(str(path.relative_to(KERNELS_DIR)).encode() + b"\0")
    h.update(path.read_bytes())
  return h.hexdigest()[:16]


def _run(cmd: List[str]) -> None:
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise KernelBuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                           f"{proc.stderr[-4000:]}")


def build_tf_ops(build_dir: Optional[os.PathLike] = None, force: bool = False,
                 jobs: int = 2) -> pathlib.Path:
  """Returns the path of the custom-op library, compiling it if stale.

  Args:
    build_dir: cache root (default build/tflm_kernels, or $TFLITE_TL_KERNELS_BUILD_DIR).
    force: rebuild even if a library for the current sources exists.
    jobs: translation units compiled in parallel.
  Raises:
    KernelBuildError: no compiler, no source tree, or a compile/link error.
  """
  cxx = _compiler()
  compile_flags, link_flags, tf_version = _tf_flags()
  out_dir = pathlib.Path(build_dir or default_build_dir()) / "tf_ops" / _digest(
      cxx, compile_flags, link_flags, tf_version)
  library = out_dir / LIBRARY_NAME
  out_dir.mkdir(parents=True, exist_ok=True)
  # Several processes (pytest workers, scripts) may ask at once: one builds.
  with open(out_dir / ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if library.exists() and not force:
      return library
    objects = []
    commands = []
    for src in _sources():
      obj = out_dir / (src.stem + ".o")
      objects.append(obj)
      commands.append([cxx, "-c", "-fPIC", "-O2", "-Wall", *_QUIET, f"-I{REPO_ROOT}",
                       *compile_flags, str(src), "-o", str(obj)])
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
      list(pool.map(_run, commands))
    # Atomic: readers never see a half-written library.
    with atomic.replacing(str(library)) as tmp:
      _run([cxx, "-shared", *map(str, objects), "-o", tmp, *link_flags])
    return library


if __name__ == "__main__":
  print(build_tf_ops())
