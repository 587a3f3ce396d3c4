"""Budget allocation by marginal Fisher potential per unit of budget.

TinyTrain's greedy (:func:`tflite_tl.sparse.select.greedy`) admits layers
in score order while each fits at its smallest size, then widens them. An
early, high-resolution layer can score well and still be a poor buy: once
admitted, the backward pass must reach it, and the gradient buffers it
crosses take the budget the admitted layers' channels would have used. A
larger budget then admits more such layers and can end up training fewer
channels (docs/tinytrain.md, the budget ablation).

This allocation weighs every move against every other. A move either
admits a layer at its smallest size or widens an admitted one by an eighth
of its channels (finally by one). Its value is the Fisher potential the
move adds, the sum of the next channels' Delta_c, in the layer's Fisher
order. With ``weigh="score"`` that sum is divided by the layer's relative
size, (|W_i|/max|W|)(M_i/max M), the score's normalisation. Its price is
the budget it takes: the growth in modelled bytes as a fraction of the
memory budget, in backward MACs as a fraction of the compute budget, or in
persisted parameter bytes as a fraction of the parameter budget, whichever
is largest. Each step takes the move with the highest value per
price that still fits, until none fits. Moves that cost nothing are taken
first, best value first. Ties go to the better-ranked layer, so the result
is deterministic.
"""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from tflite_tl.sparse import cost as cost_lib
from tflite_tl.sparse import growth
from tflite_tl.sparse import inventory as inventory_lib
from tflite_tl.sparse import scoring

POTENTIAL, SCORE = "potential", "score"
WEIGHTS = (POTENTIAL, SCORE)
_FREE = 1e-12  # the price of a move that adds no modelled cost


def layer_weights(weigh: str, names: Sequence[str],
                  inventory: inventory_lib.Inventory) -> Dict[str, float]:
  """The factor each layer's potential is multiplied by: 1, or the inverse
  of its relative size (the layer score's denominator)."""
  if weigh not in WEIGHTS:
    raise ValueError(f"weigh must be one of {WEIGHTS}, got {weigh!r}.")
  if weigh == POTENTIAL:
    return {n: 1.0 for n in names}
  relative = scoring.relative_sizes(names, inventory)
  return {n: 1.0 / relative[n] for n in names}


def _price(old: cost_lib.SchemeCost, new: cost_lib.SchemeCost,
           memory_budget, compute_budget, parameter_budget=None) -> float:
  price = 0.0
  if memory_budget is not None:
    price = max(price, (new.total_bytes - old.total_bytes) / memory_budget)
  if compute_budget is not None:
    price = max(price,
                (new.backward_macs - old.backward_macs) / compute_budget)
  if parameter_budget is not None:
    price = max(price, (new.persisted_bytes - old.persisted_bytes)
                / parameter_budget)
  return max(price, _FREE)


def allocate(model_cost: cost_lib.CostModel,
             potentials: Mapping[str, np.ndarray], ranked: Sequence[str],
             memory_budget: Optional[int], compute_budget: Optional[int],
             min_channel_fraction: float, max_layers: Optional[int],
             train_bias, weigh: str = POTENTIAL,
             parameter_budget: Optional[int] = None) -> Dict[str, int]:
  """Channels per layer, ``{layer: k}`` (see the module docstring); the
  empty dict when not even one channel of one layer fits.

  Args:
    model_cost: the cost model of the prepared model.
    potentials: ``{layer: Delta_c per channel}`` on each layer's axis.
    ranked: candidate layers, best first (breaks ties).
    memory_budget, compute_budget: bytes / backward MACs per step.
    min_channel_fraction: the smallest size a layer is admitted at.
    max_layers: admit at most this many layers (None: no cap).
    train_bias: as :meth:`CostModel.bias_layers`.
    weigh: ``"potential"`` or ``"score"`` (see the module docstring).
    parameter_budget: bytes of trained parameters and optimizer state
      (``SchemeCost.persisted_bytes``; None: unbounded).
  """
  weights = layer_weights(weigh, ranked, model_cost.inventory)
  gains = {}
  for name in ranked:
    ordered = np.sort(np.asarray(potentials[name], np.float64))[::-1]
    gains[name] = np.concatenate([[0.0], np.cumsum(ordered)]) * weights[name]
  position = {n: i for i, n in enumerate(ranked)}

  def cost_of(scheme):
    return model_cost(scheme, model_cost.bias_layers(scheme, train_bias))

  chosen: Dict[str, int] = {}
  current = cost_of(chosen)
  for fine in (False, True):
    while True:
      best = None
      for name in ranked:
        total = model_cost.channels(name)
        k = chosen.get(name, 0)
        if k == 0:
          if max_layers is not None and len(chosen) >= max_layers:
            continue
          step = 1 if fine else growth.admission_size(
              total, min_channel_fraction)
        else:
          step = growth.growth_step(total, fine)
        new_k = min(total, k + step)
        if new_k == k:
          continue
        scheme = dict(chosen, **{name: new_k})
        new = cost_of(scheme)
        if not model_cost.fits(new, memory_budget, compute_budget,
                               parameter_budget):
          continue
        value = (gains[name][new_k] - gains[name][k]) / _price(
            current, new, memory_budget, compute_budget, parameter_budget)
        key = (value, -position[name])
        if best is None or key > best[0]:
          best = (key, name, new_k, new)
      if best is None:
        break
      _, name, new_k, current = best
      chosen[name] = new_k
  return chosen
