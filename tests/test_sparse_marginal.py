"""The allocation by marginal Fisher potential per unit of budget."""
import numpy as np
import pytest

from tflite_tl import sparse
from tflite_tl.sparse import cost as cost_lib
from tflite_tl.sparse import marginal
import sparse_fixtures


class _AdditiveCost:
  """A cost model whose bytes add up: a fixed price to admit a layer (the
  backward pass reaching it) plus a price per channel."""

  def __init__(self, admit, per_channel, channels):
    self.admit, self.per_channel, self.channels_of = admit, per_channel, channels
    self.inventory = None

  def channels(self, name):
    return self.channels_of[name]

  def bias_layers(self, chosen, mode):
    return sorted(chosen)

  def __call__(self, chosen, bias_layers=()):
    total = sum(self.admit[n] + self.per_channel[n] * k
                for n, k in chosen.items())
    return cost_lib.SchemeCost(
        stored_activation_bytes=0.0, mask_bytes=0.0, inference_peak_bytes=0.0,
        forward_peak_bytes=float(total), backward_peak_bytes=0.0,
        param_bytes=0.0, gradient_bytes=0.0, optimizer_bytes=0.0,
        backward_macs=0, per_layer=())

  def fits(self, cost, memory_budget, compute_budget, parameter_budget=None):
    return cost.total_bytes <= memory_budget


def test_an_expensive_layer_to_reach_loses_to_cheap_channels():
  # "early" scores first, as the score-ordered greedy would take it, but
  # admitting it costs 60 of the 100 bytes; "late" gives more potential for
  # the budget.
  model_cost = _AdditiveCost(admit={"early": 60, "late": 0},
                             per_channel={"early": 1, "late": 1},
                             channels={"early": 8, "late": 80})
  potentials = {"early": np.full(8, 1.0), "late": np.full(80, 0.5)}
  chosen = marginal.allocate(model_cost, potentials, ["early", "late"], 100,
                             None, 0.125, None, "chosen")
  assert chosen == {"late": 80}
  # The score-ordered greedy admits "early" and has 40 bytes left for "late".
  greedy = sparse.greedy(model_cost, ["early", "late"], 100, None)
  assert greedy["early"] >= 1 and greedy["late"] < 80


def test_free_moves_come_first_and_the_budget_is_filled():
  model_cost = _AdditiveCost(admit={"a": 0, "b": 5},
                             per_channel={"a": 0, "b": 2},
                             channels={"a": 16, "b": 16})
  potentials = {"a": np.linspace(1, 0, 16), "b": np.linspace(2, 1, 16)}
  chosen = marginal.allocate(model_cost, potentials, ["b", "a"], 20, None,
                             0.125, None, "chosen")
  assert chosen["a"] == 16  # costs nothing
  # b fills what is left: 5 + 2k <= 20, so k = 7.
  assert chosen["b"] == 7


def test_max_layers_caps_admission():
  model_cost = _AdditiveCost(admit={"a": 0, "b": 0, "c": 0},
                             per_channel={"a": 1, "b": 1, "c": 1},
                             channels={"a": 4, "b": 4, "c": 4})
  potentials = {n: np.ones(4) for n in "abc"}
  chosen = marginal.allocate(model_cost, potentials, list("abc"), 100, None,
                             0.125, 2, "chosen")
  assert sorted(chosen) == ["a", "b"] and chosen == {"a": 4, "b": 4}


def test_nothing_fits_gives_no_layer():
  model_cost = _AdditiveCost(admit={"a": 50}, per_channel={"a": 1},
                             channels={"a": 4})
  assert marginal.allocate(model_cost, {"a": np.ones(4)}, ["a"], 10, None,
                           0.125, None, "chosen") == {}


def _select(**kwargs):
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  return model, sparse.select(model, x, y, batch_size=2, **kwargs)


@pytest.mark.parametrize("allocation", ["marginal", "marginal_score"])
def test_select_with_marginal_allocation_fits_and_cannot_grow(allocation):
  model, sel = _select(memory_budget=20_000, compute_budget=400_000,
                       allocation=allocation)
  assert 0 < sel.modelled_bytes <= 20_000 and sel.backward_macs <= 400_000
  cm = sparse.CostModel(sparse.model_inventory(model), 2)
  chosen = {c.layer: len(c.channels) for c in sel.layers}
  for name in cm.inventory.candidates:
    k = chosen.get(name, 0)
    if k < cm.channels(name):
      bigger = dict(chosen, **{name: k + 1})
      assert not cm.fits(cm(bigger, list(bigger)), 20_000, 400_000), name
  _, again = _select(memory_budget=20_000, compute_budget=400_000,
                     allocation=allocation)
  assert again == sel


def test_bad_allocation_and_weigh_are_refused():
  with pytest.raises(ValueError, match="allocation must be one of"):
    _select(memory_budget=20_000, allocation="knapsack")
  with pytest.raises(ValueError, match="weigh must be one of"):
    marginal.layer_weights("bytes", ["a"], None)


def test_marginal_allocation_names_the_smallest_scheme_when_nothing_fits():
  with pytest.raises(sparse.BudgetError, match="smallest possible scheme"):
    _select(memory_budget=64, allocation="marginal")
