import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks.transfer_lib import cli, plan
from benchmarks.transfer_lib.store import ResultsStore

from transfer_fakes import fake_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _options(tmp_path, **kw):
  args = dict(preset="full", results=str(tmp_path / "t.jsonl"),
              out_dir=str(tmp_path / "out"), datasets=["lfw", "digits"],
              seeds=["0", "1"], backbones=["bb"], progress=False)
  args.update(kw)
  return cli.Options(**args)


def _factory(path, measure_arena):
  del path, measure_arena
  return fake_run


def test_overrides_are_applied_and_ablations_follow_the_datasets(tmp_path):
  preset = cli.resolve_preset(_options(tmp_path, shots=["full", "5"],
                                       epochs=2))
  assert preset.seeds == (0, 1) and preset.shots == (None, 5)
  assert preset.epochs == 2
  assert all(a.datasets == ("digits",) for a in preset.ablations)
  preset = cli.resolve_preset(_options(tmp_path, datasets=["lfw"]))
  assert preset.ablations == ()
  with pytest.raises(ValueError, match="'full'"):
    cli.resolve_preset(_options(tmp_path, shots=["many"]))


def test_sweep_then_report_only_gives_the_same_report(tmp_path):
  options = _options(tmp_path, max_runs=10)
  assert cli.run(options, _factory) == 0
  assert len(ResultsStore(options.results)) == 10
  assert cli.run(_options(tmp_path), _factory) == 0
  n = len(cli.resolve_preset(options).configs())
  assert len(ResultsStore(options.results)) == n
  report = tmp_path / "out" / "t.md"
  text = report.read_text()
  assert "Ablation: batch size (digits, 10-shot, backbone `bb`)" in text
  assert "Ablation: resolution" in text
  assert "![accuracy against training memory](t_bb_10shot.png)" in text
  pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
  assert pngs == ["t_bb_10shot.png", "t_bb_full.png"]
  section = tmp_path / "BENCH.md"
  section.write_text("# Benchmarks\n")
  assert cli.run(_options(tmp_path, report_only=True,
                          benchmarks_md=str(section)), _factory) == 0
  assert report.read_text() == text
  assert "<!-- BEGIN transfer-benchmarks:full -->" in section.read_text()


def test_merge_from_combines_parallel_parts(tmp_path):
  part = str(tmp_path / "part.jsonl")
  assert cli.run(_options(tmp_path, results=part, seeds=["0"]), _factory) == 0
  main = _options(tmp_path, report_only=True, merge_from=[part])
  assert cli.run(main, _factory) == 0
  assert len(ResultsStore(main.results)) == len(ResultsStore(part))


def test_help_lists_the_flags():
  out = subprocess.run([sys.executable, "-m", "benchmarks.transfer",
                        "--helpfull"], cwd=REPO, capture_output=True,
                       text=True, check=False).stdout
  for flag in ("--preset", "--results", "--max_runs", "--report_only",
               "--merge_from", "--executor", "--ray_address"):
    assert flag in out


def test_executor_settings_are_checked_with_the_fix(tmp_path):
  with pytest.raises(ValueError, match="add --executor=ray"):
    cli.run(_options(tmp_path, ray_address="head:6379"), _factory)
  with pytest.raises(ValueError, match="'local', 'ray'"):
    cli.run(_options(tmp_path, executor="dask"), _factory)
  out = subprocess.run([sys.executable, "-m", "benchmarks.transfer",
                        "--ray_address=head:6379", f"--results={tmp_path}/x",
                        f"--out_dir={tmp_path}"], cwd=REPO,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 1 and "add --executor=ray" in out.stderr
  assert "Traceback" not in out.stderr


def _cli(*args, **kw):
  return subprocess.Popen([sys.executable, "-m", "benchmarks.transfer", *args],
                          cwd=REPO, stderr=subprocess.PIPE, text=True, **kw)


def _count_lines(path):
  try:
    with open(path, "rb") as f:
      return f.read().count(b"\n")
  except FileNotFoundError:
    return 0


@pytest.mark.slow
def test_real_sweep_killed_mid_way_resumes_to_the_same_records(tmp_path):
  """A real (small) sweep is SIGKILLed after its first finished run and
  restarted: nothing finished is lost or repeated."""
  results = str(tmp_path / "real.jsonl")
  args = ["--preset=quick", f"--results={results}",
          f"--out_dir={tmp_path}", "--datasets=lfw",
          "--methods=ft_last,tinytl_b", "--seeds=0,1", "--epochs=1",
          "--shots=5", "--measure_arena=false"]
  child = _cli(*args)
  deadline = time.time() + 300
  while _count_lines(results) < 1 and time.time() < deadline:
    assert child.poll() is None, child.stderr.read()
    time.sleep(0.2)
  child.send_signal(signal.SIGKILL)
  child.wait()
  before = ResultsStore(results).records()
  assert 1 <= len(before) < 4
  restarted = _cli(*args)
  _, err = restarted.communicate(timeout=600)
  assert restarted.returncode == 0, err
  assert f"{len(before)} runs were done before" in err
  after = ResultsStore(results).records()
  assert len(after) == 4 and len({r["run_id"] for r in after}) == 4
  assert after[:len(before)] == before
  assert (tmp_path / "real.md").exists()


@pytest.mark.slow
def test_quick_preset_finishes_within_ten_minutes(tmp_path):
  results = str(tmp_path / "quick.jsonl")
  start = time.time()
  child = _cli("--preset=quick", f"--results={results}",
               f"--out_dir={tmp_path}", "--progress=false")
  _, err = child.communicate(timeout=1200)
  elapsed = time.time() - start
  assert child.returncode == 0, err
  n = len(cli.resolve_preset(cli.Options(preset="quick")).configs())
  records = ResultsStore(results).records()
  assert len(records) == n
  assert all(r["arena_bytes"] for r in records), [
      r.get("arena_error") for r in records if not r["arena_bytes"]]
  assert (tmp_path / "quick.md").exists()
  assert elapsed < 600, f"quick preset took {elapsed:.0f} s"


def test_lowering_flags_override_the_presets_lowerings(tmp_path):
  preset = cli.resolve_preset(_options(tmp_path, kernels="tl"))
  assert preset.lowerings == (plan.Lowering("tl", "float"),)
  preset = cli.resolve_preset(_options(tmp_path, preset="int8",
                                       precision="int8", qas=False))
  assert preset.lowerings == (plan.Lowering("tl", "int8", False),)
  assert {c.lowering for c in preset.configs()} == {
      plan.Lowering("tl", "int8", False)}
  # No flag: the preset's three lowerings.
  preset = cli.resolve_preset(_options(tmp_path, preset="int8"))
  assert len(preset.lowerings) == 3
  assert cli.lowering_override(cli.Options(qas=True)) == plan.Lowering(
      "tl", "int8", True)


@pytest.mark.parametrize("kw, match", [
    (dict(precision="int8"), "must be 'sgd'"),  # full's recipe is Adam
    (dict(preset="int8", precision="int8", kernels="builtin"),
     "needs --kernels=tl"),
    (dict(kernels="tl", qas=False, precision="float"), "int8 setting")])
def test_impossible_lowering_flags_name_the_fix(tmp_path, kw, match):
  with pytest.raises(ValueError, match=match):
    cli.check_executor(_options(tmp_path, **kw))


def test_lowerings_share_a_results_file_and_report_side_by_side(tmp_path):
  options = _options(tmp_path, preset="int8", datasets=["lfw"])
  assert cli.run(options, run_fn_factory=_factory) == 0
  records = ResultsStore(options.results).records()
  # methods x lowerings x seeds x shot settings (10-shot, full split)
  assert len(records) == 3 * 3 * 2 * 2
  # A later run of one lowering alone finds its runs done.
  again = _options(tmp_path, preset="int8", datasets=["lfw"],
                   precision="int8", qas=False)
  assert cli.run(again, run_fn_factory=_factory) == 0
  assert len(ResultsStore(options.results).records()) == len(records)
  report = (tmp_path / "out" / "t.md").read_text()
  assert "TinyTL-B (tl int8 no QAS)" in report
