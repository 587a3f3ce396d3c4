"""TinyTrain's greedy selection under budgets, criteria and the Selection data."""
import json

import numpy as np
import pytest

from tflite_tl import sparse
import sparse_fixtures


def _select(**kwargs):
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  kwargs.setdefault("memory_budget", 20_000)
  kwargs.setdefault("batch_size", 2)
  return model, sparse.select(model, x, y, **kwargs)


def test_selection_fits_the_budgets_and_fills_them():
  model, sel = _select(memory_budget=20_000, compute_budget=400_000)
  assert sel.method == "tinytrain" and sel.criterion == "fisher"
  assert 0 < sel.modelled_bytes <= 20_000
  assert sel.backward_macs <= 400_000
  assert sum(v for _, v in sel.memory_breakdown) == pytest.approx(
      sel.modelled_bytes, abs=6)
  # Every chosen layer is a candidate, in forward order, with sorted
  # channels, and its bias trains.
  order = [l.name for l in model.layers]
  names = list(sel.layer_names)
  assert names == sorted(names, key=order.index)
  for choice in sel.layers:
    assert list(choice.channels) == sorted(set(choice.channels))
    assert 1 <= len(choice.channels) <= choice.total_channels
  assert set(sel.bias_layers) == set(names)
  # No layer could grow by one more channel within the budgets.
  cm = sparse.CostModel(sparse.model_inventory(model), 2)
  chosen = {c.layer: len(c.channels) for c in sel.layers}
  for name, k in chosen.items():
    if k < cm.channels(name):
      bigger = cm(dict(chosen, **{name: k + 1}), list(chosen))
      assert not cm.fits(bigger, 20_000, 400_000)


def test_larger_budget_trains_more():
  _, small = _select(memory_budget=12_000)
  _, large = _select(memory_budget=60_000)
  assert large.trained_channels > small.trained_channels
  assert large.modelled_bytes > small.modelled_bytes


def test_fisher_channels_are_the_top_potentials():
  _, sel = _select()
  potentials = dict(sel.channel_potentials)
  for choice in sel.layers:
    delta = np.asarray(potentials[choice.layer])
    k = len(choice.channels)
    best = set(np.argsort(-delta, kind="stable")[:k].tolist())
    assert set(choice.channels) == best


def test_criteria_change_only_the_channels():
  _, fisher = _select()
  _, l2 = _select(criterion="l2")
  _, random = _select(criterion="random", seed=3)
  _, random_again = _select(criterion="random", seed=3)
  _, random_other = _select(criterion="random", seed=4)
  counts = lambda s: [(c.layer, len(c.channels)) for c in s.layers]  # noqa: E731
  assert counts(fisher) == counts(l2) == counts(random)
  assert random == random_again
  assert random != random_other
  assert [c.channels for c in fisher.layers] != [c.channels for c in l2.layers]


def test_deterministic_and_round_trips_through_json():
  _, a = _select()
  _, b = _select()
  assert a == b
  text = json.dumps(a.to_dict(), sort_keys=True)
  assert sparse.Selection.from_dict(json.loads(text)) == a
  assert "| layer |" in a.format_markdown() and a.layer_names[0] in a.summary()


def test_budget_nothing_fits_names_the_smallest_scheme():
  model = sparse_fixtures.mbconv_model()
  cm = sparse.CostModel(sparse.model_inventory(model), 2)
  name, cost = sparse.smallest_scheme(cm, cm.inventory.candidates, True)
  needed = int(round(cost.total_bytes))
  x, y = sparse_fixtures.support()
  with pytest.raises(sparse.BudgetError, match=f"{needed:,} B") as info:
    sparse.select(model, x, y, memory_budget=needed - 1, batch_size=2)
  assert name in str(info.value)
  sel = sparse.select(model, x, y, memory_budget=needed, batch_size=2)
  assert sel.modelled_bytes <= needed


def test_compute_budget_alone_and_argument_errors():
  _, sel = _select(memory_budget=None, compute_budget=300_000)
  assert sel.backward_macs <= 300_000 and sel.memory_budget is None
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  with pytest.raises(ValueError, match="memory_budget"):
    sparse.select(model, x, y)
  with pytest.raises(ValueError, match="criterion"):
    sparse.select(model, x, y, memory_budget=10_000, criterion="taylor")
  with pytest.raises(ValueError, match="not candidate"):
    sparse.select(model, x, y, memory_budget=10_000, candidates=["logits"])


@pytest.mark.parametrize("allocation", ["greedy", "marginal"])
def test_parameter_budget_bounds_what_the_board_persists(allocation):
  # The flash that the board's parameter slots take is a third budget: the
  # trained parameters and optimizer state, modelled.
  model, free = _select(memory_budget=60_000, allocation=allocation,
                        momentum=0.9)
  parts = dict(free.memory_breakdown)
  assert free.persisted_bytes == (parts["trained_parameters"]
                                  + parts["optimizer_state"]) > 0
  bound = free.persisted_bytes // 2
  _, bounded = _select(memory_budget=60_000, allocation=allocation,
                       momentum=0.9, parameter_budget=bound)
  assert 0 < bounded.persisted_bytes <= bound
  assert bounded.parameter_budget == bound and free.parameter_budget is None
  assert f"parameter budget {bound:,} B" in bounded.format_markdown()
  text = json.dumps(bounded.to_dict(), sort_keys=True)
  assert sparse.Selection.from_dict(json.loads(text)) == bounded
  # Nothing is left to grow within the three budgets.
  cm = sparse.CostModel(sparse.model_inventory(model), 2, momentum=0.9)
  chosen = {c.layer: len(c.channels) for c in bounded.layers}
  for name, k in chosen.items():
    if k < cm.channels(name):
      bigger = dict(chosen, **{name: k + 1})
      assert not cm.fits(cm(bigger, list(bigger)), 60_000, None, bound)
  with pytest.raises(sparse.BudgetError, match="parameters 16 B"):
    _select(memory_budget=60_000, allocation=allocation,
            parameter_budget=16)
  with pytest.raises(ValueError, match="parameter_budget must be"):
    _select(memory_budget=60_000, parameter_budget=0)


def test_candidates_and_max_layers_restrict_the_choice():
  _, sel = _select(memory_budget=200_000, candidates=["b2_dw", "b2_project"])
  assert set(sel.layer_names) <= {"b2_dw", "b2_project"}
  _, one = _select(memory_budget=200_000, max_layers=1)
  assert len(one.layers) == 1
