"""The Ray executor on a real local Ray cluster (loopback, 2 worker slots).

The drivers run in subprocesses (as ``python -m benchmarks.transfer`` would),
with the test's per-run functions from ``transfer_fakes`` importable on the
workers through PYTHONPATH. Each test kills only the processes it started:
a Ray worker by its process id, or the driver's process group.
"""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks.transfer_lib import cli, distributed
from benchmarks.transfer_lib.store import ResultsStore

from transfer_fakes import Hybrid

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

if importlib.util.find_spec("ray") is None:
  if os.environ.get("CI"):
    pytest.fail("CI installs ray (requirements-ray.txt); it is missing.",
                pytrace=False)
  pytest.skip("needs ray: pip install -r requirements-ray.txt",
              allow_module_level=True)

_DRIVER = """
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from benchmarks.transfer_lib import cli, ray_executor
import transfer_fakes
ray, _ = ray_executor.connect(num_cpus=2)
print("gcs at", ray.get_runtime_context().gcs_address, file=sys.stderr,
      flush=True)
options = cli.Options(**{options!r})
sys.exit(cli.run(options, transfer_fakes.Hybrid(**{hybrid!r})))
"""


def _options(tmp_path, name, **kw):
  args = dict(preset="quick", results=str(tmp_path / f"{name}.jsonl"),
              out_dir=str(tmp_path / f"{name}_out"), datasets=["lfw"],
              methods=["ft_last", "tinytl_b", "tinytl_lb"], seeds=["0", "1"],
              progress=True)
  args.update(kw)
  return args


def _start_driver(options, hybrid):
  code = _DRIVER.format(repo=REPO, tests=TESTS, options=options,
                        hybrid=hybrid)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [REPO, TESTS] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
  # Its own session: the driver's process group holds the Ray services it
  # starts, so that a killed driver leaves nothing behind after the test.
  return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                          stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True, start_new_session=True)


def _stop_group(child):
  try:
    os.killpg(child.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  child.wait()


def _finish(child, timeout_s=600):
  try:
    _, err = child.communicate(timeout=timeout_s)
  except subprocess.TimeoutExpired:
    _stop_group(child)
    pytest.fail(f"the Ray driver did not finish within {timeout_s} s")
  return err


def _wait_for(condition, child, timeout_s, what):
  deadline = time.monotonic() + timeout_s
  while not condition():
    if child.poll() is not None:
      pytest.fail(f"the Ray driver exited before {what}:\n"
                  + child.stderr.read())
    if time.monotonic() > deadline:
      _stop_group(child)
      pytest.fail(f"no {what} within {timeout_s} s")
    time.sleep(0.05)


def _timing(key):
  """Wall-clock fields differ between any two runs; the rest is seeded."""
  return key == "seconds" or key.endswith("_time_s")


def _by_id(path):
  return {r["run_id"]: {k: v for k, v in r.items() if not _timing(k)}
          for r in ResultsStore(path).records()}


def test_killed_worker_is_rerun_and_results_equal_the_local_executor(
    tmp_path):
  """A real run is lost with its worker: it is run again, written once, and
  every record (accuracy, memory, measured arena) equals the local one. A
  run that raises fails on both executors alike."""
  ray_options = _options(tmp_path, "ray", executor="ray")
  configs = cli.resolve_preset(cli.Options(**ray_options)).configs()
  victim = next(c for c in configs if c.method == "ft_last" and c.seed == 1)
  failing = next(c for c in configs if c.method == "tinytl_b")
  markers = tmp_path / "markers"
  markers.mkdir()
  child = _start_driver(ray_options, dict(
      real_methods=["ft_last"], victim=victim.run_id,
      marker_dir=str(markers), failing=failing.run_id))
  marker = markers / f"{victim.run_id}.pid"
  try:
    _wait_for(marker.exists, child, 300, "start of the victim run")
    os.kill(int(marker.read_text()), signal.SIGKILL)  # Its Ray worker.
    err = _finish(child)
  finally:
    if child.poll() is None:
      _stop_group(child)
  assert child.returncode == 1, err  # The failing run.
  assert "gcs at 127.0.0.1:" in err  # A loopback-only cluster.
  assert f"RETRY {victim.describe()} [{victim.run_id}]" in err
  assert "1 failed, 1 re-run after a lost worker" in err
  assert "failed 1, retried 1" in err  # The progress line.
  assert (f"FAILED {failing.describe()}: ValueError: no lowering for "
          "tinytl_b (test failure)") in err
  ray_records = _by_id(ray_options["results"])
  done = [c for c in configs if c != failing]
  assert sorted(ray_records) == sorted(c.run_id for c in done)

  local_options = _options(tmp_path, "local", progress=False)
  assert cli.run(cli.Options(**local_options), Hybrid(
      real_methods=["ft_last"], failing=failing.run_id)) == 1
  local_records = _by_id(local_options["results"])
  assert sorted(local_records) == sorted(ray_records)
  for config in done:
    assert ray_records[config.run_id] == local_records[config.run_id], (
        config.describe())
  real = [ray_records[c.run_id] for c in configs if c.method == "ft_last"]
  assert all(r["arena_bytes"] and r["arena_error"] is None for r in real)
  assert "num_train" in real[0]  # Measured by the real runner.
  # The graph was measured and cached once, as by the local executor.
  ray_arena = _by_id(distributed.arena_cache_path(ray_options["results"]))
  assert ray_arena == _by_id(
      distributed.arena_cache_path(local_options["results"]))
  assert len(ray_arena) == 1


def _lines(path):
  try:
    with open(path, "rb") as f:
      return f.read().count(b"\n")
  except FileNotFoundError:
    return 0


def test_killed_driver_resumes_every_run_exactly_once(tmp_path):
  options = _options(tmp_path, "sweep", executor="ray",
                     datasets=["lfw", "digits"], methods=None,
                     seeds=["0", "1", "2"], measure_arena=False)
  total = len(cli.resolve_preset(cli.Options(**options)).configs())
  hybrid = dict(fake_sleep_s=0.3)
  first = _start_driver(options, hybrid)
  try:
    _wait_for(lambda: _lines(options["results"]) >= 4, first, 300,
              "4 finished runs")
  finally:
    _stop_group(first)
  before = ResultsStore(options["results"]).records()
  assert 4 <= len(before) < total, "the driver was not stopped mid-way"
  second = _start_driver(options, hybrid)
  try:
    err = _finish(second)
  finally:
    if second.poll() is None:
      _stop_group(second)
  assert second.returncode == 0, err
  assert f"{len(before)} runs were done before" in err
  with open(options["results"]) as f:
    ids = [json.loads(line)["run_id"] for line in f]
  assert len(ids) == total and len(set(ids)) == total
  assert ResultsStore(options["results"]).records()[:len(before)] == before
