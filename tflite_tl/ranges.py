"""Range checks of command-line settings: one line naming the flag, the
value given and what is accepted (shared by the export and verify CLIs)."""
import math
from typing import Optional


class FlagError(ValueError):
  """A setting is out of range; the message names the flag and the fix."""


def _number(flag: str, value) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise FlagError(f"--{flag} must be a number, got {value!r}.")
  if not math.isfinite(value):
    raise FlagError(f"--{flag} must be a finite number, got {value!r}.")
  return value


def integer_in(flag: str, value, low: int, high: Optional[int] = None,
                     note: str = "") -> None:
  if isinstance(value, bool) or not isinstance(value, int):
    raise FlagError(f"--{flag} must be an integer, got {value!r}.")
  if value < low or (high is not None and value > high):
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise FlagError(f"--{flag} must be {span}{note}, got {value}.")


def positive(flag: str, value, note: str = "") -> None:
  if _number(flag, value) <= 0:
    raise FlagError(f"--{flag} must be > 0{note}, got {value!r}.")


def fraction(flag: str, value, note: str = "") -> None:
  """0 <= value < 1."""
  if not 0.0 <= _number(flag, value) < 1.0:
    raise FlagError(f"--{flag} must be in [0, 1){note}, got {value!r}.")
