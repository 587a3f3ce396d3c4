import os
import subprocess
import sys

import pytest

from benchmarks.transfer_lib import cli
from benchmarks.transfer_lib.store import ResultsStore

from transfer_fakes import fake_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _options(tmp_path, **kw):
  args = dict(preset="full", results=str(tmp_path / "t.jsonl"),
              out_dir=str(tmp_path / "out"), datasets=["lfw", "animal_mnist"],
              seeds=["0", "1"], progress=False)
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
  assert all(a.datasets == ("animal_mnist",) for a in preset.ablations)
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
  assert "Ablation: batch size (animal_mnist, 10-shot)" in text
  assert "Ablation: resolution" in text
  assert "![accuracy against training memory](t_b" not in text
  pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
  assert pngs == ["t_fmnist_mbv2_32_10shot.png", "t_fmnist_mbv2_32_full.png"]
  section = tmp_path / "BENCH.md"
  section.write_text("# Benchmarks\n")
  assert cli.run(_options(tmp_path, report_only=True,
                          benchmarks_md=str(section)), _factory) == 0
  assert report.read_text() == text
  assert "<!-- BEGIN transfer-benchmarks:full -->" in section.read_text()


def test_help_lists_the_flags():
  out = subprocess.run([sys.executable, "-m", "benchmarks.transfer",
                        "--helpfull"], cwd=REPO, capture_output=True,
                       text=True, check=False).stdout
  for flag in ("--preset", "--results", "--max_runs", "--report_only"):
    assert flag in out
