"""Compiles an export's Arduino library and ESP-IDF component against TFLM.

Every C/C++ source of ``arduino/<name>/src/`` and ``esp-idf/components/<name>/``
is compiled with the flags TFLM's own Makefile builds its library with (host
x86-64 or Cortex-M4F, from ``$TFLM_ROOT``; see :mod:`tflite_tl.tflm.tflm_library`)
plus ``-Wall -Wextra -Werror``. Sources that need a board SDK that is not
installable here are reported, not silently left out: the sketch and the
ESP-IDF app are skipped; the storage backends compile, but only their
portable part (their SDK code sits behind ``ESP_PLATFORM`` /
``ARDUINO_ARCH_MBED``).
"""
import dataclasses
import os
import pathlib
import tempfile
from typing import Dict, List, Optional

from tflite_tl.tflm import native_build
from tflite_tl.tflm import tflm_library

# Export files that need a board SDK to compile at all.
BOARD_ONLY = {
    "main.cc": "ESP-IDF (esp_heap_caps.h, sdkconfig.h)",
}
# Files that compile anywhere, but whose SDK part only on the board.
SDK_GUARDED = {
    "tl_storage_esp_partition.c": "ESP_PLATFORM: ESP-IDF's esp_partition.h",
    "tl_storage_mbed_flash.cpp": "ARDUINO_ARCH_MBED: Mbed OS's FlashIAP.h",
}
_SOURCE_SUFFIXES = (".c", ".cc", ".cpp")


@dataclasses.dataclass(frozen=True)
class CompileReport:
  """Which sources of an export compiled for a target, and which need an SDK."""
  target: str
  compiled: List[str]  # paths relative to the export directory
  skipped: Dict[str, str]  # path -> the SDK it needs
  guarded: Dict[str, str]  # compiled path -> the SDK part its guard excluded


def self_contained(command: List[str]) -> List[str]:
  """Without the repository on the include path: an export must compile
  from its own files (the TL_* kernels it ships) and TFLM alone."""
  return [a for a in command if a != f"-I{tflm_library.REPO_ROOT}"]


def _files(directory: pathlib.Path) -> List[pathlib.Path]:
  return sorted(p for p in directory.rglob("*") if p.is_file())


def _packages(out_dir: pathlib.Path):
  """(sources, include directories) per package of the export."""
  # Sources in subdirectories count too: the TL_* kernels keep their
  # tflm_kernels/ paths (Arduino compiles src/ recursively).
  for src in sorted(out_dir.glob("arduino/*/src")):
    yield _files(src), [src]
  for comp in sorted(out_dir.glob("esp-idf/components/*")):
    yield _files(comp / "src"), [comp / "include"]
  for main in sorted(out_dir.glob("esp-idf/example/main")):
    yield _files(main), []
  for sketch in sorted(out_dir.glob("arduino/*/examples/*/*.ino")):
    yield [sketch], []


def compile_export(out_dir: os.PathLike, target: str = "host",
                   root: Optional[os.PathLike] = None,
                   jobs: int = 2) -> CompileReport:
  """Compiles the export in ``out_dir`` for ``target`` ("host" or
  "cortex-m4f"); TflmBuildError (with the compiler's output) on any error
  or warning."""
  out_dir = pathlib.Path(out_dir)
  if not any(out_dir.glob("arduino/*/src")) and not any(
      out_dir.glob("esp-idf/components/*/src")):
    raise FileNotFoundError(
        f"{out_dir} has no arduino/<name>/src or esp-idf/components/<name>: "
        f"export first (python -m export --out={out_dir}).")
  build = tflm_library.tflm_flags(target, root)
  compiled, skipped, guarded = [], {}, {}
  with tempfile.TemporaryDirectory(prefix="tflite_tl_compile_") as tmp:
    for sources, includes in _packages(out_dir):
      todo = []
      for path in sources:
        rel = str(path.relative_to(out_dir))
        if path.suffix == ".ino":
          skipped[rel] = "the Arduino core (Arduino.h) and an Arduino TFLM library"
        elif path.name in BOARD_ONLY:
          skipped[rel] = BOARD_ONLY[path.name]
        elif path.suffix in _SOURCE_SUFFIXES:
          todo.append(path)
          if path.name in SDK_GUARDED:
            guarded[rel] = SDK_GUARDED[path.name]
      if not todo:
        continue
      extra = [f"-I{d}" for d in includes]
      objects = pathlib.Path(tmp) / f"pkg{len(compiled)}"
      objects.mkdir()
      commands = [self_contained(build.compile_command(
          p, objects / f"{i}_{p.name}.o",
          extra=[*native_build.STRICT_WARNINGS, *extra]))
          for i, p in enumerate(todo)]
      native_build.run_all(commands, jobs)
      compiled += [str(p.relative_to(out_dir)) for p in todo]
  return CompileReport(target, compiled, skipped, guarded)


def describe(report: CompileReport) -> str:
  lines = [f"{report.target}: {len(report.compiled)} sources compiled with "
           "TFLM's flags and -Wall -Wextra -Werror"]
  lines += [f"  compiled without its {why} part: {path}"
            for path, why in sorted(report.guarded.items())]
  lines += [f"  not compiled (needs {why}): {path}"
            for path, why in sorted(report.skipped.items())]
  return "\n".join(lines)
