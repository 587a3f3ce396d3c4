"""The static sparse-update scheme of MIT's Tiny Training Engine.

Lin et al. ("On-Device Training Under 256KB Memory", NeurIPS 2022) update a
fixed part of the network chosen offline, the same for every task: the
biases of the last layers, and the kernels of a few of them on a ratio of
their *input* channels ranked by kernel-slice L2 norm ("magnitude"). For
MobileNets only the blocks' 1x1 expansion convs train kernels (their
``pw1_weight_only``). Here:

* biases: every conv and depthwise conv from the first layer of the
  ``bias_blocks``-th last inverted-residual block to the end of the model
  (default: the last half of the blocks);
* kernels: the expansion convs of the last ``weight_blocks`` blocks
  (default: half of ``bias_blocks``, at least one), each on
  ``weight_ratio`` of its input channels (default 1/4), ranked by
  ``criterion`` (``l2``; ``random`` as a baseline);
* the head, fully.

A plain CNN without inverted-residual blocks (a Sequential stack of convs)
takes each Conv2D as a block: biases of the last ``bias_blocks`` convs and
after, kernels of the last ``weight_blocks`` convs on a ratio of their input
channels.

No data is needed; the result is a :class:`~tflite_tl.sparse.selection.
Selection` with the same modelled figures as TinyTrain's.
"""
import math
from typing import Optional, Sequence, Union

from tflite_tl._compat import keras
from tflite_tl.rewrite import blocks as blocks_lib
from tflite_tl.sparse import cost as cost_lib
from tflite_tl.sparse import criteria
from tflite_tl.sparse import inventory as inventory_lib
from tflite_tl.sparse.select import build_selection

DEFAULT_WEIGHT_RATIO = 0.25


def _first_layer(block) -> str:
  return (block.expand or block.depthwise).name


def _blocks(model, inventory):
  """(first layer, kernel-trained layer or None) per block, first to last."""
  if any(l.kind == inventory_lib.DEPTHWISE for l in inventory.layers):
    found = blocks_lib.find_mbconv_blocks(model)
    return [(_first_layer(b), b.expand.name if b.expand is not None else None)
            for b in found]
  # A plain CNN: each conv (not the head) is a block of its own.
  convs = [l.name for l in inventory.layers if l.kind == inventory_lib.CONV]
  if not convs:
    raise ValueError("sparse_update: the model has neither inverted-residual "
                     "blocks nor Conv2D layers to update; use ft_last.")
  return [(name, name) for name in convs]


def sparse_update_scheme(model: keras.Model, *,
                         bias_blocks: Optional[int] = None,
                         weight_blocks: Optional[int] = None,
                         weight_ratio: Union[float, Sequence[float]] =
                         DEFAULT_WEIGHT_RATIO,
                         criterion: str = criteria.L2,
                         batch_size: int = 8, momentum: float = 0.0,
                         seed: int = 0):
  """The static scheme on the prepared (BatchNorm-folded, new head) model.

  Args:
    bias_blocks: last blocks whose layers (and everything after) train
      their biases.
    weight_blocks: last blocks whose expansion conv trains its kernel.
    weight_ratio: fraction of input channels trained per expansion conv; one
      value, or one per weight block (first to last).
    criterion: ``"l2"`` (largest kernel-slice norm first) or ``"random"``.
    batch_size, momentum: the training step the figures are for.
    seed: seeds ``criterion="random"``.

  Raises:
    ValueError: bad counts or ratios, or no block has an expansion conv.
  """
  if criterion not in (criteria.L2, criteria.RANDOM):
    raise ValueError(f"sparse_update: criterion must be 'l2' or 'random' (a "
                     f"static scheme sees no data), got {criterion!r}.")
  inventory = inventory_lib.model_inventory(model)
  found = _blocks(model, inventory)
  n = len(found)
  bias_blocks = math.ceil(n / 2) if bias_blocks is None else bias_blocks
  if not 1 <= bias_blocks <= n:
    raise ValueError(f"sparse_update: bias_blocks must be in [1, {n}] (the "
                     f"model has {n} blocks), got {bias_blocks}.")
  if weight_blocks is None:
    weight_blocks = max(1, bias_blocks // 2)
  if not 1 <= weight_blocks <= bias_blocks:
    raise ValueError(f"sparse_update: weight_blocks must be in [1, "
                     f"bias_blocks={bias_blocks}], got {weight_blocks}.")
  ratios = ([float(weight_ratio)] * weight_blocks
            if isinstance(weight_ratio, (int, float)) else
            [float(r) for r in weight_ratio])
  if len(ratios) != weight_blocks or not all(0 < r <= 1 for r in ratios):
    raise ValueError(f"sparse_update: weight_ratio must be one value or "
                     f"{weight_blocks} values in (0, 1], got {weight_ratio!r}.")
  info = inventory_lib.by_name(inventory)
  start = info[found[n - bias_blocks][0]].index
  bias_layers = [l.name for l in inventory.layers
                 if l.index >= start and l.has_bias
                 and l.kind in (inventory_lib.CONV, inventory_lib.DEPTHWISE)]
  weight = [trained for _, trained in found[n - weight_blocks:]
            if trained is not None]
  if not weight:
    raise ValueError(f"sparse_update: none of the last {weight_blocks} "
                     "blocks has a 1x1 expansion conv to train.")
  ratios = ratios[len(ratios) - len(weight):]
  model_cost = cost_lib.CostModel(inventory, batch_size, momentum, "input")
  chosen, rankings = {}, {}
  for name, ratio in zip(weight, ratios):
    channels = model_cost.channels(name)
    chosen[name] = max(1, int(round(channels * ratio)))
    rankings[name] = list(criteria.rank_channels(
        criterion, channels=channels,
        kernel=model.get_layer(name).kernel.numpy(), channel_axis="input",
        seed=seed, layer_index=info[name].index))
  return build_selection(
      method="sparse_update", criterion=criterion, model_cost=model_cost,
      chosen=chosen, rankings=rankings, bias_layers=bias_layers, seed=seed,
      inventory=inventory)
