import dataclasses

import pytest

from benchmarks.transfer_lib import presets


def test_quick_preset_is_small_and_covers_all_methods_and_three_seeds():
  configs = presets.QUICK.configs()
  assert {c.method for c in configs} == set(presets.ALL_METHODS)
  assert len({c.seed for c in configs}) >= 3
  assert len({c.dataset for c in configs}) in (2, 3)
  assert len({c.backbone for c in configs}) == 1


def test_full_preset_has_all_datasets_both_regimes_and_ablations():
  configs = presets.FULL.configs()
  assert {c.dataset for c in configs} == {"animal_mnist", "mnist", "lfw",
                                          "digits"}
  assert {c.shots for c in configs} >= {None, 10}
  assert {c.batch_size for c in configs} == {1, 8}
  assert len({c.resolution for c in configs}) >= 3
  assert len({c.run_id for c in configs}) == len(configs)
  # Each ablation's baseline is the main grid's run, not a second copy.
  main_ids = {c.run_id for c in presets.FULL.main_configs()}
  batch = presets.FULL.ablation_configs(presets.FULL.ablations[0])
  assert sum(c.run_id in main_ids for c in batch) == len(batch) // 2


def test_unknown_preset_and_axis_are_clear_errors():
  with pytest.raises(ValueError, match="available presets"):
    presets.get_preset("huge")
  bad = presets.Ablation(name="x", axis="epochs", values=(1, 2),
                         methods=("ft_full",), datasets=("lfw",), shots=10)
  with pytest.raises(ValueError, match="supported axes"):
    presets.QUICK.ablation_configs(bad)


def test_few_shot_runs_come_first_and_full_split_has_its_own_epochs():
  preset = presets.dataclasses.replace(presets.FULL, full_split_epochs=2)
  configs = preset.configs()
  kinds = [c.shots is None for c in configs]
  assert kinds == sorted(kinds) and any(kinds)
  assert {c.epochs for c in configs if c.shots is None} == {2}
  assert {c.epochs for c in configs if c.shots} == {preset.epochs}


def test_backbone_options_override_the_method_options_per_backbone():
  preset = presets.get_preset("tinytrain")
  budgets = presets.TINYTRAIN_BUDGETS
  main = [c for c in preset.main_configs() if c.method == "tinytrain"]
  assert {c.backbone for c in main} == set(preset.backbones)
  for config in main:
    assert config.options == {"criterion": "fisher",
                              "allocation": "marginal",
                              "memory_budget": budgets[config.backbone]}
  # The other methods keep the grid's own (no) options.
  assert all(not c.method_options for c in preset.main_configs()
             if c.method not in presets.SPARSE_METHODS)
  # A method-option ablation varies its axis around each backbone's point:
  # the criterion keeps the backbone's budget, the budget the criterion.
  by_axis = {a.axis: a for a in preset.ablations}
  for config in preset.ablation_configs(by_axis["criterion"]):
    assert config.options["memory_budget"] == budgets[config.backbone]
  # The allocation ablation's greedy points leave the option out: greedy is
  # implied, so they are the runs made before the option existed.
  greedy = [c for c in preset.ablation_configs(by_axis["allocation"])
            if "allocation" not in c.options]
  assert greedy and all(
      c.options == {"criterion": "fisher",
                    "memory_budget": budgets[c.backbone]} for c in greedy)
  assert dataclasses.replace(greedy[0], method_options=dict(
      greedy[0].options, allocation="greedy")).run_id == greedy[0].run_id
  budget_runs = preset.ablation_configs(by_axis["memory_budget"])
  assert {c.options["criterion"] for c in budget_runs} == {"fisher"}
  # The main grid's points are also ablation points (same run ids, run once).
  ids = {c.run_id for c in preset.configs()}
  assert {c.run_id for c in main} <= ids
  assert len(ids) == len(preset.configs())


def test_step_sizes_are_per_backbone_and_the_step_ablation_runs_the_other():
  preset = presets.get_preset("tinytrain")
  main = [c for c in preset.main_configs() if c.method == "tinytrain"]
  for config in main:
    assert config.learning_rate == preset.learning_rate_of(config.backbone,
                                                           "tinytrain")
  assert {preset.learning_rate_of(b, "tinytrain")
          for b in preset.backbones} == {3e-3, 1e-2}
  # A backbone's override leaves the other methods' step sizes alone.
  for backbone in preset.backbones:
    assert preset.learning_rate_of(backbone, "sparse_update") == 1e-2
    assert preset.learning_rate_of(backbone, "tinytl_lb") == 3e-3
  by_axis = {a.axis: a for a in preset.ablations}
  steps = preset.ablation_configs(by_axis[presets.LEARNING_RATE_AXIS])
  main_by_cell = {(c.backbone, c.dataset, c.seed): c for c in main}
  assert {c.learning_rate for c in steps} == {3e-3, 1e-2}
  for config in steps:
    point = main_by_cell[(config.backbone, config.dataset, config.seed)]
    # Same options as the main grid's point: only the step differs.
    assert config.options == point.options
    assert (config.run_id == point.run_id) == (
        config.learning_rate == point.learning_rate)
  # The other ablations keep each backbone's main step size.
  for config in preset.ablation_configs(by_axis["memory_budget"]):
    assert config.learning_rate == preset.learning_rate_of(config.backbone,
                                                           "tinytrain")
