"""TinyTrain's task-adaptive selection of layers and channels under budgets.

``select(model, images, labels, memory_budget=..., compute_budget=...)``:

1. one forward and backward pass on the support set gives the Fisher
   potential of every channel of every candidate layer
   (:mod:`tflite_tl.sparse.fisher`) and the layer potentials P_i;
2. layers are ranked by the multi-objective score
   s_i = P_i / ((|W_i|/max|W|) (M_i/max M)) (:mod:`tflite_tl.sparse.scoring`);
3. layers are taken greedily in score order while the scheme with the
   layer at its smallest size (``min_channel_fraction`` of its channels, at
   least one) still fits both budgets (:mod:`tflite_tl.sparse.cost`: bytes of
   training state beyond inference and backward MACs per step);
4. the chosen layers then grow, in score order and round-robin, by an
   eighth of their channels at a time and finally one channel at a time, as
   long as the scheme fits: each layer trains its top-k channels by the
   channel criterion (``fisher``; ``l2`` and ``random`` are the baselines).

Steps 3-4 are TinyTrain's (``allocation="greedy"``, the default).
``allocation="marginal"`` spends the budgets instead on the move, admitting
a layer or widening one, that adds the most Fisher potential per unit of
budget (:mod:`tflite_tl.sparse.marginal`); the layers' scores still order
ties and are reported.

The head always trains fully; with ``train_bias="chosen"`` (default) the
chosen layers' biases train too (``"downstream"``: also every bias the
gradient reaches; ``"none"``). The result is a :class:`~tflite_tl.sparse.
selection.Selection`. Everything is deterministic for a given seed (the seed
only matters for ``criterion="random"``).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from tflite_tl._compat import keras
from tflite_tl.sparse import cost as cost_lib
from tflite_tl.sparse import criteria
from tflite_tl.sparse import fisher
from tflite_tl.sparse import growth
from tflite_tl.sparse import inventory as inventory_lib
from tflite_tl.sparse import marginal
from tflite_tl.sparse import scoring
from tflite_tl.sparse.selection import LayerChoice
from tflite_tl.sparse.selection import Selection

DEFAULT_MIN_CHANNEL_FRACTION = 0.125
#: How the budgets are spent: ``greedy`` (TinyTrain: layers in score order,
#: then widened), ``marginal`` (the move adding the most Fisher potential per
#: unit of budget) or ``marginal_score`` (the same with each layer's potential
#: normalised as in its score); :mod:`tflite_tl.sparse.marginal`.
ALLOCATIONS = ("greedy", "marginal", "marginal_score")


class BudgetError(ValueError):
  """No sparse-update scheme fits the given budgets."""


def _layer_kernel(model, name):
  layer = model.get_layer(name)
  kernel = getattr(layer, "kernel", None)
  if kernel is None:
    kernel = layer.depthwise_kernel
  return kernel.numpy()


def _check_budgets(memory_budget, compute_budget, parameter_budget=None):
  if memory_budget is None and compute_budget is None:
    raise ValueError("select: give a memory_budget (bytes of training state "
                     "beyond inference) or a compute_budget (backward MACs "
                     "per step), or both.")
  for name, value in (("memory_budget", memory_budget),
                      ("compute_budget", compute_budget),
                      ("parameter_budget", parameter_budget)):
    if value is not None and (not isinstance(value, (int, np.integer))
                              or value <= 0):
      raise ValueError(f"select: {name} must be a positive integer, got "
                       f"{value!r}.")


def smallest_scheme(model_cost: cost_lib.CostModel, candidates: Sequence[str],
                    train_bias: bool):
  """(layer, cost) of the cheapest scheme: the head plus one channel of the
  layer that needs the fewest bytes."""
  best = None
  for name in candidates:
    cost = model_cost({name: 1}, model_cost.bias_layers([name], train_bias))
    key = (cost.total_bytes, cost.backward_macs)
    if best is None or key < best[0]:
      best = (key, name, cost)
  return best[1], best[2]


def _nothing_fits(model_cost, candidates, train_bias, memory_budget,
                  compute_budget, parameter_budget=None):
  name, cost = smallest_scheme(model_cost, candidates, train_bias)
  memory = "unbounded" if memory_budget is None else f"{memory_budget:,} B"
  compute = ("unbounded" if compute_budget is None
             else f"{compute_budget:,} backward MACs per step")
  persisted = ("" if parameter_budget is None else
               f", parameters {parameter_budget:,} B")
  return BudgetError(
      f"No sparse update fits the budget (memory {memory}, compute "
      f"{compute}{persisted}, batch "
      f"{model_cost.batch_size}): the smallest possible scheme, the head plus "
      f"one channel of layer '{name}', needs {int(round(cost.total_bytes)):,} "
      f"B of training state, {cost.backward_macs:,} backward MACs and "
      f"{int(round(cost.persisted_bytes)):,} B of trained parameters and "
      "optimizer state (modelled). Raise the budget to at least that, lower "
      "the batch size, or train only the head (method ft_last).")


def greedy(model_cost: cost_lib.CostModel, ranked: Sequence[str],
           memory_budget: Optional[int], compute_budget: Optional[int],
           min_channel_fraction: float = DEFAULT_MIN_CHANNEL_FRACTION,
           max_layers: Optional[int] = None,
           train_bias="chosen",
           parameter_budget: Optional[int] = None) -> Dict[str, int]:
  """Channels per layer, ``{layer: k}``, of the scheme the budgets allow.

  Args:
    model_cost: the cost model of the prepared model.
    ranked: candidate layers, best first.
    memory_budget, compute_budget: bytes / backward MACs per step (None =
      unbounded; not both).
    min_channel_fraction: the smallest size a layer is admitted at.
    max_layers: stop admitting layers after this many (None: no cap).
    train_bias: which biases train: ``"chosen"`` layers', ``"downstream"``
      (every bias the gradient reaches), ``"none"`` (see
      :meth:`CostModel.bias_layers`).
    parameter_budget: bytes of trained parameters and optimizer state, what
      a board persists (None: unbounded).

  Raises:
    BudgetError: not even one channel of one layer fits.
  """
  if not 0.0 < min_channel_fraction <= 1.0:
    raise ValueError(f"min_channel_fraction must be in (0, 1], got "
                     f"{min_channel_fraction}.")

  def fits(scheme):
    biases = model_cost.bias_layers(scheme, train_bias)
    return model_cost.fits(model_cost(scheme, biases), memory_budget,
                           compute_budget, parameter_budget)

  chosen: Dict[str, int] = {}
  for name in ranked:
    if max_layers is not None and len(chosen) >= max_layers:
      break
    k = growth.admission_size(model_cost.channels(name), min_channel_fraction)
    if fits(dict(chosen, **{name: k})):
      chosen[name] = k
  if not chosen:
    # Nothing fits at its smallest size: admit the best layer that fits at
    # all, with as many channels as fit.
    for name in ranked:
      if fits({name: 1}):
        chosen[name] = 1
        break
  if not chosen:
    raise _nothing_fits(model_cost, ranked, train_bias, memory_budget,
                        compute_budget, parameter_budget)
  order = [n for n in ranked if n in chosen]
  for fine in (False, True):
    grew = True
    while grew:
      grew = False
      for name in order:
        total = model_cost.channels(name)
        k = min(total, chosen[name] + growth.growth_step(total, fine))
        if k > chosen[name] and fits(dict(chosen, **{name: k})):
          chosen[name] = k
          grew = True
  return chosen


def build_selection(*, method: str, criterion: str, model_cost, chosen,
                    rankings, bias_layers, seed, memory_budget=None,
                    compute_budget=None, scores=None, potentials=None,
                    inventory=None, parameter_budget=None) -> Selection:
  """The :class:`Selection` of ``chosen`` ({layer: k}) with its figures."""
  inventory = inventory or model_cost.inventory
  scheme_cost = model_cost(chosen, bias_layers)
  per_layer = cost_lib.per_layer_dict(scheme_cost)
  order = {n: i for i, n in enumerate(inventory.names())}
  layer_potentials = fisher.layer_potentials(potentials) if potentials else {}
  choices = []
  for name in sorted(chosen, key=order.get):
    k = chosen[name]
    stored, param_bytes, wgrad = per_layer[name]
    info = model_cost.info(name)
    choices.append(LayerChoice(
        layer=name, kind=info.kind, channel_axis=model_cost.axis(name),
        channels=tuple(sorted(int(c) for c in rankings[name][:k])),
        total_channels=model_cost.channels(name),
        score=None if scores is None else float(scores[name]),
        potential=layer_potentials.get(name),
        stored_bytes=int(round(stored)), param_bytes=int(round(param_bytes)),
        weight_grad_macs=int(wgrad)))
  return Selection(
      method=method, criterion=criterion, layers=tuple(choices),
      bias_layers=tuple(sorted(bias_layers)), head=inventory.head,
      batch_size=model_cost.batch_size, momentum=model_cost.momentum,
      seed=int(seed), memory_budget=memory_budget,
      compute_budget=compute_budget, parameter_budget=parameter_budget,
      modelled_bytes=int(round(scheme_cost.total_bytes)),
      memory_breakdown=scheme_cost.breakdown(),
      saved_breakdown=scheme_cost.saved(),
      backward_macs=int(scheme_cost.backward_macs),
      scores=tuple(sorted((scores or {}).items())),
      layer_potentials=tuple(sorted(layer_potentials.items())),
      channel_potentials=tuple(sorted(
          (name, tuple(float(v) for v in potentials[name]))
          for name in chosen)) if potentials else ())


def select(model: keras.Model, images, labels, *,
           memory_budget: Optional[int] = None,
           compute_budget: Optional[int] = None,
           parameter_budget: Optional[int] = None,
           criterion: str = criteria.FISHER, channel_axis: str = "input",
           batch_size: int = 8, momentum: float = 0.0, seed: int = 0,
           min_channel_fraction: float = DEFAULT_MIN_CHANNEL_FRACTION,
           max_layers: Optional[int] = None, train_bias="chosen",
           candidates: Optional[Sequence[str]] = None,
           forward_bytes: int = 4, allocation: str = "greedy") -> Selection:
  """TinyTrain's selection on the support set (see the module docstring).

  Args:
    model: the prepared model: BatchNorm folded, the new head for the
      support labels' classes (``apply_method(..., "tinytrain")`` does this).
    images, labels: the support set (float32 NHWC in [0, 1], int labels).
    memory_budget: bytes of training state beyond inference (modelled).
    compute_budget: backward MACs per training step.
    parameter_budget: bytes of trained parameters and optimizer state (what
      a board persists in flash; an export sets it after a flash overrun).
    criterion: channel ranking inside a chosen layer: ``fisher``, ``l2``,
      ``random``. Layers are always ranked by the Fisher-based score.
    channel_axis: ``"input"`` (stores only the chosen input channels) or
      ``"output"`` for non-depthwise convs.
    batch_size, momentum: the training step the budgets are for.
    seed: seeds ``criterion="random"``.
    min_channel_fraction, max_layers, train_bias: see :func:`greedy`.
    candidates: restrict the candidate layers (default: every Conv2D with
      one group and every DepthwiseConv2D except the head).
    forward_bytes: 4, or 1 when the step's forward pass is int8
      (``cost.CostModel``).
    allocation: how the budgets are spent (``ALLOCATIONS``): ``greedy``
      (TinyTrain's), ``marginal`` or ``marginal_score``
      (:mod:`tflite_tl.sparse.marginal`).

  Raises:
    BudgetError: nothing fits (the message names the smallest scheme).
    ValueError: bad arguments or support data.
  """
  _check_budgets(memory_budget, compute_budget, parameter_budget)
  criteria.check_criterion(criterion)
  if allocation not in ALLOCATIONS:
    raise ValueError(f"select: allocation must be one of {ALLOCATIONS}, got "
                     f"{allocation!r}.")
  inventory = inventory_lib.model_inventory(model)
  names = list(inventory.candidates)
  if candidates is not None:
    unknown = sorted(set(candidates) - set(names))
    if unknown:
      raise ValueError(f"select: {unknown} are not candidate layers of model "
                       f"'{model.name}' (candidates: {', '.join(names)}).")
    names = [n for n in names if n in set(candidates)]
  if not names:
    raise ValueError(f"select: model '{model.name}' has no Conv2D or "
                     "DepthwiseConv2D layer to update.")
  model_cost = cost_lib.CostModel(inventory, batch_size, momentum,
                                  channel_axis, forward_bytes=forward_bytes)
  axes = {n: model_cost.axis(n) for n in names}
  potentials = fisher.channel_potentials(model, images, labels, axes)
  scores = scoring.layer_scores(fisher.layer_potentials(potentials),
                                inventory)
  ranked = scoring.ranked(scores, inventory)
  if allocation == "greedy":
    chosen = greedy(model_cost, ranked, memory_budget, compute_budget,
                    min_channel_fraction, max_layers, train_bias,
                    parameter_budget)
  else:
    chosen = marginal.allocate(
        model_cost, potentials, ranked, memory_budget, compute_budget,
        min_channel_fraction, max_layers, train_bias,
        weigh=marginal.SCORE if allocation == "marginal_score"
        else marginal.POTENTIAL, parameter_budget=parameter_budget)
    if not chosen:
      raise _nothing_fits(model_cost, ranked, train_bias, memory_budget,
                          compute_budget, parameter_budget)
  order = {n: i for i, n in enumerate(inventory.names())}
  rankings: Dict[str, List[int]] = {}
  for name in chosen:
    rankings[name] = list(criteria.rank_channels(
        criterion, channels=model_cost.channels(name),
        potentials=potentials[name], kernel=_layer_kernel(model, name),
        channel_axis=axes[name], seed=seed, layer_index=order[name]))
  return build_selection(
      method="tinytrain", criterion=criterion, model_cost=model_cost,
      chosen=chosen, rankings=rankings,
      bias_layers=model_cost.bias_layers(chosen, train_bias), seed=seed,
      memory_budget=memory_budget, compute_budget=compute_budget,
      parameter_budget=parameter_budget, scores=scores,
      potentials=potentials, inventory=inventory)
