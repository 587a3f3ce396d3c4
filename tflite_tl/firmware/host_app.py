"""The exported serial App on the host: built from an export, driven by pipe.

``build_host_app`` compiles every source of an export's Arduino library
(``arduino/<name>/src``, the TL_* kernels it ships included) with the host
TFLM build's flags and ``-Wall -Wextra -Werror``, plus ``csrc/host/
tl_host_app.cc`` (stdin/stdout as the serial port, a file as the parameter
flash, an arena of exactly ``kArenaBytes``), and links it against TFLM's
host library (built from ``$TFLM_ROOT``, cached). ``AppSession`` speaks the
App's protocol (``templates/tl_app.h``) to it, as a user at a serial
terminal would.
"""
import dataclasses
import os
import pathlib
import re
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tflite_tl.firmware import compile_check
from tflite_tl.tflm import native_build
from tflite_tl.tflm import tflm_library

HOST_MAIN = (pathlib.Path(__file__).resolve().parent / "csrc" / "host" /
             "tl_host_app.cc")
_SOURCES = (".c", ".cc", ".cpp")


class AppError(RuntimeError):
  """The App answered with an error line, or exited."""


def library_sources(src_dir: pathlib.Path) -> List[pathlib.Path]:
  """Every C/C++ source of an exported library's source root."""
  return sorted(p for p in pathlib.Path(src_dir).rglob("*")
                if p.suffix in _SOURCES and p.is_file())


def build_host_app(src_dir: os.PathLike, out: os.PathLike,
                   root: Optional[os.PathLike] = None, jobs: int = 2,
                   main: pathlib.Path = HOST_MAIN) -> pathlib.Path:
  """Builds ``out`` (an executable) from the library in ``src_dir``."""
  src_dir, out = pathlib.Path(src_dir), pathlib.Path(out)
  build = tflm_library.build_tflm("host", root, jobs=jobs, quiet=True)
  objects_dir = out.parent / f"{out.name}.obj"
  objects_dir.mkdir(parents=True, exist_ok=True)
  sources = library_sources(src_dir) + [main]
  objects, commands = [], []
  for i, src in enumerate(sources):
    obj = objects_dir / f"{i}_{src.name}.o"
    objects.append(obj)
    commands.append(compile_check.self_contained(build.compile_command(
        src, obj, extra=[*native_build.STRICT_WARNINGS, f"-I{src_dir}"])))
  native_build.run_all(commands, jobs)
  native_build.run_all([build.link_command(objects, out)], 1)
  return out


@dataclasses.dataclass(frozen=True)
class Prediction:
  label: int
  name: str
  score: float


class AppSession:
  """One run of the host App; ``storage`` is its parameter-flash file."""

  def __init__(self, executable: os.PathLike, storage: os.PathLike,
               timeout: float = 600.0):
    self._timeout = timeout
    self.skipped_steps = 0  # train steps the App reported skipped
    self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [str(executable), str(storage)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    self.banner = self._until(lambda line: line == "ready")

  def _line(self) -> str:
    raw = self.proc.stdout.readline()
    if not raw:
      self.proc.wait(timeout=self._timeout)
      raise AppError("the App exited (status "
                     f"{self.proc.returncode}): "
                     + self.proc.stderr.read().decode(errors="replace")[-2000:])
    line = raw.decode().rstrip("\n")
    if line.startswith("error"):
      raise AppError(line)
    return line

  def _until(self, done) -> List[str]:
    lines = []
    while True:
      line = self._line()
      lines.append(line)
      if done(line):
        return lines

  def _send(self, data: bytes) -> None:
    self.proc.stdin.write(data)
    self.proc.stdin.flush()

  def predict(self, image: np.ndarray) -> Prediction:
    self._send(b"I" + _pixels(image))
    match = re.fullmatch(r"pred (\d+) (\S+) (\S+)", self._line())
    if not match:
      raise AppError("unexpected answer to I")
    return Prediction(int(match.group(1)), match.group(2),
                      float(match.group(3)))

  def add_sample(self, image: np.ndarray, label: int) -> int:
    self._send(b"L" + str(int(label)).encode() + b"\n" + _pixels(image))
    match = re.fullmatch(r"ok samples=(\d+)", self._line())
    if not match:
      raise AppError("unexpected answer to L")
    return int(match.group(1))

  def train(self, epochs: int) -> List[float]:
    """Mean loss of each epoch (over the steps that trained); the steps the
    App skipped for a non-finite loss add up in ``skipped_steps``."""
    self._send(b"T" + str(int(epochs)).encode() + b"\n")
    losses = []
    for _ in range(epochs):
      match = re.fullmatch(r"epoch (\d+) loss (\S+)(?: skipped (\d+) .*)?",
                           self._line())
      if not match:
        raise AppError("unexpected answer to T")
      losses.append(float(match.group(2)))
      self.skipped_steps += int(match.group(3) or 0)
    return losses

  def save(self) -> int:
    self._send(b"S")
    return int(re.fullmatch(r"saved seq=(\d+)", self._line()).group(1))

  def restore(self) -> int:
    self._send(b"R")
    return int(re.fullmatch(r"restored seq=(\d+)", self._line()).group(1))

  def summary(self) -> Tuple[str, str, str]:
    """Model, memory and re-selection lines of '?'."""
    self._send(b"?")
    return self._line(), self._line(), self._line()

  def reselect(self) -> Dict[str, List[int]]:
    """'F': {layer: its new channels} chosen on the stored samples."""
    self._send(b"F")
    chosen = {}
    for line in self._until(lambda l: l.startswith("reselected ")):
      match = re.fullmatch(r"reselect (\S+) ([0-9,]+)", line)
      if match:
        chosen[match.group(1)] = [int(c) for c in match.group(2).split(",")]
    return chosen

  def close(self) -> int:
    if self.proc.poll() is None:
      self._send(b"Q")
      self.proc.stdin.close()
      self.proc.wait(timeout=self._timeout)
    self.proc.stdout.close()
    self.proc.stderr.close()
    return self.proc.returncode

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self.proc.poll() is None and exc[0] is not None:
      self.proc.kill()
    self.close()


def _pixels(image: np.ndarray) -> bytes:
  """8-bit pixels of a float image in [0, 1] (rounded, NHWC order)."""
  return np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0,
                 255).astype(np.uint8).tobytes()


def accuracy(session: AppSession, images: Sequence[np.ndarray],
             labels: Sequence[int]) -> float:
  hits = sum(session.predict(x).label == int(y)
             for x, y in zip(images, labels))
  return hits / max(len(labels), 1)
