"""Running a command-line tool of the project as a user would, and reading
what it printed."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Stage lines of the export ("[1/6] load   0.0 s  failed").
_STAGE = re.compile(r"^\[\d+/\d+\] ")
# TensorFlow's native start-up log, which the benchmark CLIs do not divert
# (the export and verify CLIs do): "I0000 00:00:...", "WARNING: All log...".
_TF_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d|WARNING: All log messages)")


def run_cli(module: str, *args: str, env=None) -> subprocess.CompletedProcess:
  """``python -m module args`` from the repository root, output captured."""
  return subprocess.run(
      [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
      text=True, check=False,
      env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))


def message_lines(stderr: str):
  """stderr without the export's stage lines and TensorFlow's native log:
  what the user is told."""
  return [l for l in stderr.splitlines()
          if l.strip() and not _STAGE.match(l) and not _TF_LOG.match(l)]


def assert_one_line_error(proc, prefix: str, *fragments: str) -> str:
  """Exit status 1, no traceback, nothing on stdout, and exactly one
  message line that starts with ``prefix`` and holds every fragment."""
  assert proc.returncode == 1, (proc.returncode, proc.stderr)
  assert "Traceback" not in proc.stderr, proc.stderr
  assert proc.stdout == "", proc.stdout
  lines = message_lines(proc.stderr)
  assert len(lines) == 1, lines
  (line,) = lines
  assert line.startswith(prefix), line
  for fragment in fragments:
    assert fragment in line, (fragment, line)
  return line
