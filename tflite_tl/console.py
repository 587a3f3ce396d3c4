"""Quiet command-line runs: TensorFlow's native log out of the user's way.

TensorFlow and its converter write to the process's file descriptors from
C++ (CUDA probes at import, MLIR and quantizer chatter on every conversion,
absl ``I0000``/``E0000`` lines that ``TF_CPP_MIN_LOG_LEVEL`` does not reach
because they are logged before absl is initialised). Redirecting
``sys.stderr`` does not catch them; :class:`QuietRun` swaps file descriptors
1 and 2 themselves for a log file, and gives the CLI the real terminal as
``stdout``/``stderr`` streams for what the user should see (stage lines,
progress bars, results, warnings, errors).

Start it before TensorFlow is imported (the CUDA probes run at import); this
module imports neither TensorFlow nor the rest of the package.
"""
import logging
import os
import sys
import tempfile
import textwrap
import traceback
from typing import Optional, Sequence, TextIO

from absl import logging as absl_logging

# Flags that ask for the full log; absl's own --verbosity (alias -v=N) too.
VERBOSE_FLAGS = ("-v", "--verbose", "--verbose=true", "--verbose=1")
_VERBOSITY_PREFIXES = ("--verbosity", "-v=")


def verbose_requested(argv: Sequence[str]) -> bool:
  """Whether the command line asks for the full log (before flag parsing,
  which happens after TensorFlow is imported)."""
  for arg in argv[1:]:
    if arg == "--":
      break
    if arg in VERBOSE_FLAGS or arg.startswith(_VERBOSITY_PREFIXES):
      return True
  return False


def expand_short_verbose(argv: Sequence[str]) -> list:
  """``argv`` with a bare ``-v`` spelled ``--verbose`` (absl reserves
  ``-v`` as the short name of ``--verbosity``, which needs a value)."""
  return [("--verbose" if a == "-v" else a) for a in argv]


class QuietRun:
  """File descriptors 1 and 2 diverted to a log file while active.

  Attributes:
    stdout, stderr: text streams on the real terminal (or whatever the
      descriptors were before), for output meant for the user.
    log_path: the file collecting everything else.
  """

  def __init__(self):
    self.stdout: TextIO = sys.stdout
    self.stderr: TextIO = sys.stderr
    self.log_path: Optional[str] = None
    self._saved = None

  @property
  def active(self) -> bool:
    return self._saved is not None

  def start(self) -> "QuietRun":
    sys.stdout.flush()
    sys.stderr.flush()
    fd, self.log_path = tempfile.mkstemp(prefix="tflite_tl_", suffix=".log")
    self._saved = (os.dup(1), os.dup(2))
    self.stdout = os.fdopen(os.dup(self._saved[0]), "w", buffering=1)
    self.stderr = os.fdopen(os.dup(self._saved[1]), "w", buffering=1)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return self

  def stop(self, keep_log: bool = False) -> Optional[str]:
    """Restores the descriptors. Returns the log's path if ``keep_log``,
    else deletes it and returns None."""
    if not self.active:
      return None
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(self._saved[0], 1)
    os.dup2(self._saved[1], 2)
    for fd in self._saved:
      os.close(fd)
    self._saved = None
    for stream in (self.stdout, self.stderr):
      stream.flush()
    self.stdout, self.stderr = sys.stdout, sys.stderr
    if keep_log:
      return self.log_path
    os.unlink(self.log_path)
    return None

  def log_tail(self, lines: int = 20) -> str:
    """The last ``lines`` lines of the diverted output."""
    if not self.log_path or not os.path.exists(self.log_path):
      return ""
    with open(self.log_path, encoding="utf-8", errors="replace") as f:
      return "\n".join(f.read().splitlines()[-lines:])


def show_python_warnings_on(stream: TextIO) -> None:
  """Python-level logging for a quiet run: warnings and errors of this
  package reach ``stream``; TensorFlow's Python INFO chatter does not."""
  absl_logging.set_verbosity(absl_logging.WARNING)
  handler = absl_logging.get_absl_handler()
  handler.python_handler.stream = stream
  # The message, not absl's thread id, time and source line.
  handler.python_handler.setFormatter(
      logging.Formatter("%(levelname)s: %(message)s"))
  logging.getLogger("tensorflow").setLevel(logging.ERROR)


# Set (to anything but "" or "0") to get the traceback of a user error too.
TRACEBACK_ENV = "TFLITE_TL_TRACEBACK"


def traceback_requested(verbose: bool = False) -> bool:
  """Whether a user error should come with its traceback: the CLI's verbose
  flag or $TFLITE_TL_TRACEBACK."""
  return verbose or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def one_line(error: BaseException) -> str:
  """The first line of an error's message (what the user needs; details
  such as an interpreter's output tail follow on later lines)."""
  text = str(error)
  if isinstance(error, KeyError) and error.args:
    text = str(error.args[0])
  if getattr(error, "multiline", False):
    # An explanation that is a list (a fit report's consumers and fixes).
    return text.strip() or type(error).__name__
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  return lines[0] if lines else type(error).__name__


def report_error(program: str, error: BaseException, stream: TextIO,
                 verbose: bool = False) -> None:
  """Prints ``<program> failed: <one line>`` (after the traceback when
  :func:`traceback_requested`)."""
  if traceback_requested(verbose):
    traceback.print_exception(type(error), error, error.__traceback__,
                              file=stream)
  print(f"{program} failed: {one_line(error)}", file=stream)
  stream.flush()


# What a user can cause (bad flags, files, data, a board it does not fit)
# ends with one line and exit status 1, never a traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError, KeyError)


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--help=true")


def help_requested(argv: Sequence[str]) -> bool:
  return any(a in HELP_FLAGS for a in argv[1:])


def _default(flag) -> str:
  value = flag.default
  if value is None or value == []:
    return ""
  if isinstance(value, bool):
    value = str(value).lower()
  elif isinstance(value, (list, tuple)):
    value = ",".join(str(v) for v in value)
  return f" Default: {value}."


def grouped_help(usage: str, groups, examples: Sequence[str],
                 flag_values, width: int = 79) -> str:
  """``--help`` text: ``usage``, the flags by group, then ``examples``.

  ``groups`` is a sequence of (title, flag names) over ``flag_values``.
  """
  lines = [usage.strip(), ""]
  for title, names in groups:
    lines.append(f"{title}:")
    for name in names:
      flag = flag_values[name]
      head = f"  --{name}"
      if flag.short_name:
        head += f", -{flag.short_name}"
      lines.append(head)
      lines += [f"      {w}" for w in
                textwrap.wrap(flag.help + _default(flag), width - 6)]
    lines.append("")
  lines.append("Examples:")
  lines += [f"  {e}" for e in examples]
  lines += ["", "All flags, including absl's: --helpfull."]
  return "\n".join(lines) + "\n"
