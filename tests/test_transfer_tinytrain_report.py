"""The sparse-update sections of the transfer report (preset tinytrain)."""
import os

from benchmarks.transfer_lib import aggregate, presets, publish
from benchmarks.transfer_lib import tinytrain_report

from transfer_fakes import fake_run


def _records():
  preset = presets.get_preset("tinytrain")
  return preset, [dict(fake_run(c), run_id=c.run_id, config=c.to_dict())
                  for c in preset.configs()]


def test_sections_report_targets_criterion_and_budgets():
  preset, records = _records()
  groups = aggregate.group_records(records)
  text = "\n\n".join(tinytrain_report.sections(groups, preset, [], "."))
  assert "TinyTrain against TinyTL-L+B and FT-Full" in text
  # Each backbone's main-grid budget is its own (fake arenas: TinyTrain
  # 1.3 * (31,000 + budget / 8) against L+B's 1.3 * 38,000): tiny at 16 KiB
  # 0.87, mobilenet_v2 at 128 KiB 1.25, so the arena half of the target is
  # missed; FT-Full (0.88 + budget offset against 0.90) is missed too.
  assert ("`tiny`: `allocation=marginal`, `criterion=fisher`, "
          "`memory_budget=16384`") in text
  assert ("`mobilenet_v2`: `allocation=marginal`, `criterion=fisher`, "
          "`memory_budget=131072`") in text
  assert "| 0.87 |" in text and "| 1.25 |" in text and "**missed**" in text
  assert "fisher > l2 > random (target)" in text
  # Paired differences per seed (fake offsets: fisher - l2 = 2 pp, l2 -
  # random = 3 pp, each run with its own noise of at most ±1 pp).
  assert "fisher − l2 (pp, paired)" in text and "l2 − random (pp, paired)" in text
  rows = [line for line in text.splitlines() if line.startswith("| `")
          and line.count("±") >= 5]
  assert rows
  for row in rows:
    cells = [c.strip() for c in row.strip("|").split("|")]
    fisher_l2, l2_random = (float(c.split(" ± ")[0]) for c in cells[5:7])
    assert 0.0 <= fisher_l2 <= 4.0 and 1.0 <= l2_random <= 5.0
  assert text.count("| met |") >= 4  # fake Fisher beats L2 beats random
  # The allocation ablation: both allocations on every cell, paired.
  assert "allocation of the budget" in text
  assert "marginal − greedy (pp, paired)" in text
  allocation = text.split("allocation of the budget")[1].split("####")[0]
  assert allocation.count("| `") == len(preset.backbones) * len(
      preset.datasets)
  assert "| – |" not in allocation
  # The step-size ablation: both steps on every cell, paired; the main
  # grid's step size of each backbone is named.
  assert "step 0.003 − step 0.01 (pp, paired)" in text
  steps = text.split("#### Sparse update: step size")[1].split("####")[0]
  assert steps.count("| `") == len(preset.backbones) * len(preset.datasets)
  assert "| – |" not in steps
  assert "`memory_budget=16384`, step 0.01" in text
  assert "`memory_budget=131072`, step 0.003" in text
  for budget in ("| 8 |", "| 16 |", "| 256 |"):
    assert budget in text
  assert "| FT-Last |" in text and "Rewrite + selection (s)" in text


def test_publish_writes_the_arena_figures_and_keeps_ablations_out_of_main(
    tmp_path):
  preset, records = _records()
  written = publish.publish(records, preset, str(tmp_path), "transfer_tt",
                            "cmd")
  names = sorted(os.path.basename(p) for p in written)
  assert "transfer_tt_tiny_sparse_budget.png" in names
  assert "transfer_tt_tiny_sparse_arena_10shot.png" in names
  text = open(os.path.join(tmp_path, "transfer_tt.md"), encoding="utf-8").read()
  main = text.split("#### Targets")[0]
  # One TinyTrain row per main table (a dataset of a backbone): the
  # ablations' runs are not in them.
  assert main.count("| TinyTrain |") == (len(preset.datasets)
                                         * len(preset.backbones))
  assert "transfer_tt_tiny_sparse_budget.png" in text


def test_no_sections_without_tinytrain_runs():
  preset, records = _records()
  groups = aggregate.group_records(
      [r for r in records if r["config"]["method"] != "tinytrain"])
  assert tinytrain_report.sections(groups, preset, [], ".") == []
