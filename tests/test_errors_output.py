"""Catalogue of bad input, output directories (docs/errors.md#output-
directories): unwritable, a file, someone else's directory, an export
interrupted by SIGINT or SIGKILL; existing content is never touched."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tflite_tl import atomic
from tflite_tl import pipeline
from tflite_tl.pipeline.config import validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(out):
  return pipeline.ExportConfig(out=str(out), model="tiny")


def _tree(root):
  return {os.path.relpath(os.path.join(d, f), root):
          open(os.path.join(d, f), "rb").read()
          for d, _, files in os.walk(root) for f in files}


def test_unwritable_parent_is_refused_before_any_work():
  # /sys refuses new entries to every user, root included.
  with pytest.raises(ValueError, match=r"--out=/sys/tltl_out: cannot write in "
                     r"/sys \(.*\); choose a writable directory."):
    validate(_cfg("/sys/tltl_out"))


def test_out_below_a_file_is_refused(tmp_path):
  (tmp_path / "notes.txt").write_text("keep")
  with pytest.raises(ValueError, match="notes.txt is a file, not a "
                     "directory; choose an output path inside a directory"):
    validate(_cfg(tmp_path / "notes.txt" / "out"))
  assert (tmp_path / "notes.txt").read_text() == "keep"


def test_out_that_is_a_file_is_untouched(tmp_path):
  (tmp_path / "out").write_text("keep")
  with pytest.raises(atomic.OutputExistsError, match="--out: .*out exists "
                     "and is not a directory."):
    validate(_cfg(tmp_path / "out"))
  assert (tmp_path / "out").read_text() == "keep"


def test_foreign_non_empty_directory_is_untouched(tmp_path):
  out = tmp_path / "photos"
  out.mkdir()
  (out / "cat.jpg").write_bytes(b"\xff\xd8")
  with pytest.raises(atomic.OutputExistsError, match="photos exists and is "
                     r"not a tflite-tl output \(no report.json\); choose a new "
                     "or empty directory."):
    validate(_cfg(out))
  assert _tree(out) == {"cat.jpg": b"\xff\xd8"}


def test_missing_parents_are_not_created_by_a_failed_check(tmp_path):
  with pytest.raises(pipeline.ExportError):
    validate(pipeline.ExportConfig(out=str(tmp_path / "a" / "b"),
                                   method="nope"))
  validate(_cfg(tmp_path / "a" / "b"))
  assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_export_leaves_the_previous_one_intact(tmp_path, sig):
  out = tmp_path / "out"
  out.mkdir()
  (out / "report.json").write_text("{\"previous\": true}")
  (out / "train.tflite").write_bytes(b"old")
  script = textwrap.dedent(f"""
      import os, signal
      from tflite_tl import atomic
      # A shell that starts jobs in the background ignores Ctrl-C for them,
      # and Python keeps an inherited SIG_IGN: restore what a user's
      # terminal gives, Ctrl-C raising KeyboardInterrupt.
      signal.signal(signal.SIGINT, signal.default_int_handler)
      with atomic.atomic_directory({str(out)!r}, "report.json") as tmp:
        atomic.write_tree(tmp, {{"train.tflite": b"new", "REPORT.md": "x"}})
        os.kill(os.getpid(), {int(sig)})
      """)
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                        capture_output=True, text=True, check=False,
                        env=dict(os.environ, PYTHONPATH=ROOT))
  assert proc.returncode != 0
  assert _tree(out) == {"report.json": b"{\"previous\": true}",
                        "train.tflite": b"old"}
  leftovers = sorted(p for p in os.listdir(tmp_path) if p != "out")
  if sig == signal.SIGINT:
    assert leftovers == []  # the temporary directory was removed
  else:
    # SIGKILL gives no chance to clean up: only a hidden temporary
    # directory beside the output may remain, never a partial output.
    assert all(p.startswith(".out.tmp-") for p in leftovers)
