"""Compiles our C++ against a TFLM build: the TL_* adapters, the native runner.

Everything is compiled with exactly the flags TFLM's Makefile used for the
library (``TflmBuild.compile_command``) plus ``-Wall -Wextra -Werror``, and
cached next to the library, keyed by a hash of our sources and those flags::

  <TFLM build dir>/tl-<hash>/
    libtl_training_ops.a      tflm_kernels/tflm/*.cc (host or Cortex-M4F)
    tl_tflm_builtin_ops.inc   the Add*() ops of TFLM_ROOT's op resolver
    tl_tflm_runner            host: tflite_tl/tflm/csrc/tl_tflm_runner.cc
    tl_tflm_runner.elf        Cortex-M4F: the same, for QEMU (semihosted.py)

Standard library only (no TensorFlow import).
"""
import concurrent.futures
import dataclasses
import fcntl
import hashlib
import os
import pathlib
import re
import shlex
import shutil
import subprocess
from typing import Iterable, List, Optional, Sequence

from tflite_tl.tflm import semihosted
from tflite_tl.tflm import tflm_library
from tflite_tl.tflm.tflm_library import REPO_ROOT
from tflite_tl.tflm.tflm_library import TflmBuild
from tflite_tl.tflm.tflm_library import TflmBuildError

KERNELS_DIR = REPO_ROOT / "tflm_kernels"
RUNNER_SOURCE = pathlib.Path(__file__).resolve().parent / "csrc" / "tl_tflm_runner.cc"
SEMIHOSTED_START = RUNNER_SOURCE.parent / "tl_semihosted_start.c"
RUNNER_NAME = "tl_tflm_runner"
OPS_LIBRARY = "libtl_training_ops.a"
OPS_INCLUDE = "tl_tflm_builtin_ops.inc"
STRICT_WARNINGS = ("-Wall", "-Wextra", "-Werror")
_RESOLVER_HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
_FORMAT = 1  # bump when the layout or commands change


def adapter_sources() -> List[pathlib.Path]:
  return sorted((KERNELS_DIR / "tflm").glob("*.cc"))


def _headers() -> List[pathlib.Path]:
  return sorted((KERNELS_DIR / "reference").glob("*.h")) + sorted(
      (KERNELS_DIR / "tflm").glob("*.h"))


def builtin_op_adders(resolver_header: str) -> List[str]:
  """Names X of every ``TfLiteStatus AddX(...)`` in TFLM's
  micro_mutable_op_resolver.h callable without arguments (all parameters
  defaulted): each registers one op. AddCustom/AddBuiltin need arguments."""
  names = []
  for match in re.finditer(r"TfLiteStatus\s+Add(\w+)\s*\(", resolver_header):
    depth, end = 1, match.end()
    while depth and end < len(resolver_header):
      depth += {"(": 1, ")": -1}.get(resolver_header[end], 0)
      end += 1
    params, parts, nesting, current = resolver_header[match.end():end - 1], [], 0, ""
    for c in params:
      nesting += {"(": 1, "<": 1, ")": -1, ">": -1}.get(c, 0)
      if c == "," and nesting == 0:
        parts.append(current)
        current = ""
      else:
        current += c
    if current.strip():
      parts.append(current)
    if all("=" in p for p in parts) and match.group(1) not in names:
      names.append(match.group(1))
  return sorted(names)


def _digest(build: TflmBuild, sources: Iterable[pathlib.Path],
            extra: Sequence[str]) -> str:
  h = hashlib.sha256()
  for part in (str(_FORMAT), build.identity, build.cxx, *build.cxxflags,
               build.optimization, build.cc, *build.ccflags, *build.includes,
               *build.ldflags,
               *build.libs, *STRICT_WARNINGS, *extra):
    h.update(part.encode() + b"\0")
  for path in sorted(set(sources)):
    h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
    h.update(path.read_bytes())
  return h.hexdigest()[:12]


def _run(cmd: Sequence[str]) -> None:
  if shutil.which("nice"):
    cmd = ["nice", "-n", "10", *cmd]
  proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise TflmBuildError(
        f"command failed ({proc.returncode}): {shlex.join(cmd)}\n"
        + (proc.stdout + proc.stderr)[-6000:])


def compile_objects(build: TflmBuild, sources: Sequence[pathlib.Path],
                    out_dir: pathlib.Path, extra: Sequence[str] = (),
                    jobs: int = 2) -> List[pathlib.Path]:
  """Compiles each source with TFLM's flags + ``-Wall -Wextra -Werror``."""
  objects, commands = [], []
  for src in sources:
    rel = src.relative_to(REPO_ROOT)
    obj = out_dir / "obj" / rel.with_suffix(".o")
    obj.parent.mkdir(parents=True, exist_ok=True)
    objects.append(obj)
    commands.append(build.compile_command(
        src, obj, extra=[*STRICT_WARNINGS, *extra]))
  run_all(commands, jobs)
  return objects


def run_all(commands: Sequence[Sequence[str]], jobs: int = 2) -> None:
  """Runs compiler commands, ``jobs`` at a time under nice; the first
  failure raises TflmBuildError with the compiler's output."""
  with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
    list(pool.map(_run, commands))


def _archiver(build: TflmBuild) -> str:
  ar = build.cxx[:-len("g++")] + "ar" if build.cxx.endswith("g++") else "ar"
  return ar if shutil.which(ar) else "ar"


class _CacheEntry:
  """A locked output directory; ``done`` marks it complete."""

  def __init__(self, directory: pathlib.Path):
    self.directory = directory
    self._lock_path = directory.parent / f"{directory.name}.lock"
    self._lock = None

  def __enter__(self):
    self.directory.parent.mkdir(parents=True, exist_ok=True)
    self._lock = open(self._lock_path, "w")  # pylint: disable=consider-using-with
    fcntl.flock(self._lock, fcntl.LOCK_EX)
    return self

  def __exit__(self, *exc):
    self._lock.close()

  def complete(self, name: str) -> bool:
    return (self.directory / name).is_file()

  def publish(self, tmp: pathlib.Path, name: str) -> pathlib.Path:
    final = self.directory / name
    os.replace(tmp, final)  # atomic: never a half-written file
    return final


def build_training_ops(target: str = "host", root: Optional[os.PathLike] = None,
                       *, jobs: int = 2,
                       build: Optional[TflmBuild] = None) -> pathlib.Path:
  """``libtl_training_ops.a``: every tflm_kernels/tflm/*.cc adapter compiled
  against TFLM's headers for ``target`` with TFLM's flags and -Wall -Wextra
  -Werror (cached). Needs TFLM's flags only, not its library."""
  build = build or tflm_library.tflm_flags(target, root)
  sources = adapter_sources()
  directory = build.directory / f"tl-{_digest(build, sources + _headers(), ())}"
  with _CacheEntry(directory) as entry:
    if entry.complete(OPS_LIBRARY):
      return directory / OPS_LIBRARY
    objects = compile_objects(build, sources, directory, jobs=jobs)
    tmp = directory / (OPS_LIBRARY + ".tmp")
    tmp.unlink(missing_ok=True)
    _run([_archiver(build), "rcs", str(tmp), *map(str, objects)])
    return entry.publish(tmp, OPS_LIBRARY)


def _write_ops_include(build: TflmBuild, path: pathlib.Path) -> List[str]:
  header = build.tflm_root / _RESOLVER_HEADER
  names = builtin_op_adders(header.read_text(encoding="utf-8"))
  if not names:
    raise TflmBuildError(f"no Add*() ops found in {header}")
  path.write_text(
      f"// Generated by tflite_tl/tflm/native_build.py from {header}.\n"
      + "".join(f"TL_TFLM_OP({n})\n" for n in names))
  return names


def build_runner(root: Optional[os.PathLike] = None, *, jobs: int = 2,
                 quiet: bool = True, target: str = "host") -> pathlib.Path:
  """The TFLM runner (tflite_tl/tflm/csrc/tl_tflm_runner.cc), built and
  cached: a host executable, or for ``target="cortex-m4f"`` an ELF for QEMU
  mps2-an386 with semihosting (:mod:`tflite_tl.tflm.semihosted`)."""
  if target not in tflm_library.TARGETS:
    raise ValueError(f"Unknown runner target {target!r}; use one of "
                     f"{' or '.join(tflm_library.TARGETS)}.")
  build = tflm_library.build_tflm(target, root, jobs=jobs, quiet=quiet)
  ops = build_training_ops(build=build, jobs=jobs)
  resolver = build.tflm_root / _RESOLVER_HEADER
  semihosted_build = target != "host"
  sources = [RUNNER_SOURCE] + ([SEMIHOSTED_START] if semihosted_build else [])
  extra = [semihosted.DEFINE] if semihosted_build else []
  script = semihosted.linker_script() if semihosted_build else ""
  # The op list is generated from TFLM's header: its text is part of the key.
  h = hashlib.sha256(resolver.read_bytes()).hexdigest()[:12]
  key = (h, *extra, hashlib.sha256(script.encode()).hexdigest()[:12])
  directory = build.directory / (
      f"tl-{_digest(build, sources + adapter_sources() + _headers(), key)}")
  name = RUNNER_NAME + (".elf" if semihosted_build else "")
  with _CacheEntry(directory) as entry:
    if entry.complete(name):
      return directory / name
    directory.mkdir(parents=True, exist_ok=True)
    _write_ops_include(build, directory / OPS_INCLUDE)
    objects = compile_objects(build, sources, directory,
                              extra=[f"-I{directory}", *extra], jobs=jobs)
    tmp = directory / (name + ".tmp")
    link_extra = []
    if semihosted_build:
      script_path = directory / "tl_tflm_runner.ld"
      script_path.write_text(script)
      link_extra = semihosted.link_flags(str(script_path))
    _run(build.link_command([*objects, ops], tmp, extra=link_extra))
    return entry.publish(tmp, name)


KERNEL_TEST_SOURCE = KERNELS_DIR / "tests" / "tflm_kernels_test.cc"
KERNEL_TEST_NAME = "tflm_kernels_test"


def build_kernel_tests(root: Optional[os.PathLike] = None, *, jobs: int = 2,
                       quiet: bool = True) -> pathlib.Path:
  """The TFLM kernel test (tflm_kernels/tests/tflm_kernels_test.cc): every
  TL_* op through TFLM's KernelRunner on the goldens. Host, cached.

  Its golden reader reports malformed files with C++ exceptions, so this one
  test translation unit drops TFLM's -fno-exceptions; the kernels and TFLM
  keep every TFLM flag."""
  build = tflm_library.build_tflm("host", root, jobs=jobs, quiet=quiet)
  ops = build_training_ops(build=build, jobs=jobs)
  test_build = dataclasses.replace(
      build, cxxflags=tuple(f for f in build.cxxflags if f != "-fno-exceptions"))
  sources = [KERNEL_TEST_SOURCE]
  headers = sorted((KERNELS_DIR / "tests").glob("*.h"))
  directory = build.directory / (
      f"tl-{_digest(test_build, sources + headers + adapter_sources() + _headers(), ('test',))}")
  with _CacheEntry(directory) as entry:
    if entry.complete(KERNEL_TEST_NAME):
      return directory / KERNEL_TEST_NAME
    directory.mkdir(parents=True, exist_ok=True)
    objects = compile_objects(test_build, sources, directory, jobs=jobs)
    tmp = directory / (KERNEL_TEST_NAME + ".tmp")
    _run(test_build.link_command([*objects, ops], tmp))
    return entry.publish(tmp, KERNEL_TEST_NAME)
