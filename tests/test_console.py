"""Quiet command-line runs: native output diverted at the fd level."""
import os
import subprocess
import sys

from absl import flags

from tflite_tl import console
from tflite_tl.firmware.fit import DoesNotFitError

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = r"""
import os, subprocess, sys
from tflite_tl import console
quiet = console.QuietRun().start()
os.write(2, b"I0000 native noise on fd 2\n")     # what C++ logging does
os.write(1, b"converter chatter on fd 1\n")
print("python stderr noise", file=sys.stderr)
subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child\\n')"])
print("[1/6] load  0.1 s  for the user", file=quiet.stderr)
print("result line", file=quiet.stdout)
keep = sys.argv[1] == "keep"
log = quiet.stop(keep_log=keep)
print("after stop", file=sys.stderr)
if keep:
  print("LOG", open(log).read().replace("\n", "|"))
"""


def _run(mode):
  env = dict(os.environ, PYTHONPATH=_ROOT)
  return subprocess.run([sys.executable, "-c", _SCRIPT, mode],
                        capture_output=True, text=True, env=env, check=True)


def test_native_output_goes_to_the_log_and_user_output_through():
  proc = _run("drop")
  assert proc.stdout == "result line\n"
  assert proc.stderr == "[1/6] load  0.1 s  for the user\nafter stop\n"


def test_the_log_is_kept_on_request():
  proc = _run("keep")
  log = proc.stdout.split("LOG ", 1)[1]
  for text in ("I0000 native noise", "converter chatter",
               "python stderr noise", "child"):
    assert text in log


def test_verbose_requests():
  assert not console.verbose_requested(["export", "--out=x"])
  for arg in ("-v", "--verbose", "--verbosity=1", "-v=0"):
    assert console.verbose_requested(["export", arg])
  assert not console.verbose_requested(["export", "--", "-v"])
  assert console.expand_short_verbose(["p", "-v", "-v=1"]) == [
      "p", "--verbose", "-v=1"]


def test_grouped_help_lists_groups_defaults_and_examples():
  values = flags.FlagValues()
  flags.DEFINE_string("model", "tiny", "Backbone.", flag_values=values)
  flags.DEFINE_bool("quiet", True, "Be quiet.", flag_values=values)
  flags.DEFINE_multi_string("extra", [], "More.", flag_values=values)
  text = console.grouped_help("prog --model=M", [
      ("Model", ["model"]), ("Output", ["quiet", "extra"])],
                              ["prog --model=tiny"], values)
  assert text.startswith("prog --model=M\n")
  assert "Model:\n  --model\n      Backbone. Default: tiny.\n" in text
  assert "Be quiet. Default: true." in text
  assert "More." in text and "Default: ." not in text  # empty list
  assert text.index("Output:") > text.index("Model:")
  assert "Examples:\n  prog --model=tiny\n" in text


def test_a_fit_report_is_printed_whole():
  text = "Does not fit x: needs 2 B\n  Biggest: arena 2 B\n  Fix: lower --batch"
  assert console.one_line(DoesNotFitError(text)) == text
  assert console.one_line(ValueError(text)) == "Does not fit x: needs 2 B"
