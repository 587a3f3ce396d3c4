"""What an export tells its user while it runs: one line per stage with its
wall time and what it produced, and a progress bar inside the long stages.

``Progress(stream)`` prints to ``stream``; ``Progress()`` (the library
default) prints nothing. Bars are tqdm bars on the same stream, shown only
when it is a terminal (a CI log gets the stage lines alone).
"""
import contextlib
import time
from typing import Iterator, Optional, TextIO

from tqdm import tqdm

STAGES = ("load", "rewrite", "fine-tune", "lower", "verify", "export")
# With --instruction_counts: the firmware built and run in QEMU.
STAGES_WITH_FIRMWARE = STAGES[:-1] + ("firmware",) + STAGES[-1:]


class Stage:
  """A running stage: set its ``summary``, open bars for its long parts."""

  def __init__(self, progress: "Progress", name: str):
    self.name = name
    self.summary = ""
    self._progress = progress

  def bar(self, total: int, unit: str, desc: Optional[str] = None) -> tqdm:
    """A progress bar (a silent one when nothing is shown)."""
    stream = self._progress.stream
    shown = stream is not None and _is_terminal(stream)
    return tqdm(total=total, unit=unit, desc=desc or self.name, leave=False,
                file=stream, disable=not shown, dynamic_ncols=True)


def _is_terminal(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


class Progress:
  """Stage lines of a run, numbered ``[k/N]`` over ``stages``."""

  def __init__(self, stream: Optional[TextIO] = None, stages=STAGES):
    self.stream = stream
    self.stages = tuple(stages)
    self.seconds = {}

  @contextlib.contextmanager
  def stage(self, name: str) -> Iterator[Stage]:
    """Times the block; prints ``[k/N] name  12.3 s  summary`` at its end
    (and ``failed`` instead of the summary when it raises)."""
    stage = Stage(self, name)
    start = time.perf_counter()
    try:
      yield stage
    except BaseException:
      self._line(name, time.perf_counter() - start, "failed")
      raise
    self._line(name, time.perf_counter() - start, stage.summary)

  def _line(self, name: str, seconds: float, text: str) -> None:
    self.seconds[name] = seconds
    if self.stream is None:
      return
    number = (f"[{self.stages.index(name) + 1}/{len(self.stages)}] "
              if name in self.stages else "")
    print(f"{number}{name:<9} {seconds:6.1f} s  {text}".rstrip(),
          file=self.stream, flush=True)

  def note(self, text: str) -> None:
    """A line outside the stages (e.g. a warning the user must see)."""
    if self.stream is not None:
      print(f"      {text}", file=self.stream, flush=True)
