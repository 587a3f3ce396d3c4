"""The sparse-update methods: ``tinytrain`` and ``sparse_update``.

Both fold BatchNorm (as ``tinytl_b``), replace the head (which trains
fully), choose layers and channels (a :class:`tflite_tl.sparse.Selection`)
and apply it with channel-sparse layers (:mod:`tflite_tl.rewrite.
channel_sparse`). The user's model is not modified.

``tinytrain`` (Kwon et al., ICML 2024) selects on the user's samples:
``apply_method(model, "tinytrain", num_classes=K, support=(images, labels),
memory_budget=..., compute_budget=...)``, or applies a ready
``selection=``. Options: ``parameter_budget`` (bytes of trained
parameters and optimizer state, what a board persists in flash),
``criterion`` ("fisher", "l2", "random"), ``channel_axis`` ("input",
"output"), ``batch_size`` and ``momentum`` (the training step the budgets
are for), ``min_channel_fraction``, ``max_layers``, ``train_bias``,
``allocation`` ("greedy", TinyTrain's; "marginal"), ``seed``. Without
budgets it selects under ``DEFAULT_MEMORY_BUDGET``.

``sparse_update`` (the static scheme of Lin et al., NeurIPS 2022) needs no
data: ``bias_blocks``, ``weight_blocks``, ``weight_ratio``, ``criterion``
("l2", "random"), ``batch_size``, ``momentum``, ``seed``, or ``selection=``.

The selection used is ``selection_of(result)``.
"""
from tflite_tl import sparse as sparse_lib
from tflite_tl.rewrite import channel_sparse
from tflite_tl.rewrite import fold_bn
from tflite_tl.rewrite import head

#: Training-state budget (bytes) when neither budget is given: a quarter of
#: the 256 KB of SRAM of the smallest supported boards.
DEFAULT_MEMORY_BUDGET = 64 * 1024

TINYTRAIN_OPTIONS = ("selection", "support", "memory_budget", "compute_budget",
                     "parameter_budget", "criterion", "channel_axis",
                     "batch_size", "momentum", "min_channel_fraction",
                     "max_layers", "train_bias", "forward_bytes",
                     "candidates", "allocation")
SPARSE_UPDATE_OPTIONS = ("selection", "bias_blocks", "weight_blocks",
                         "weight_ratio", "criterion", "batch_size",
                         "momentum")


def _check_options(method, options, allowed):
  unknown = set(options) - set(allowed)
  if unknown:
    raise ValueError(f"method '{method}' does not take option(s) "
                     f"{sorted(unknown)}; it takes {sorted(allowed)}.")


def prepare(model, num_classes=None, seed=0):
  """The model a selection is made on: BatchNorm folded, the new head."""
  folded = fold_bn.fold_batch_norm(model)
  if num_classes is None:
    return folded
  return head.replace_classifier(folded, num_classes, seed=seed)


def _support(support):
  try:
    images, labels = support
  except (TypeError, ValueError) as e:
    raise ValueError("method 'tinytrain': support must be a pair (images "
                     "[N,H,W,C] float32 in [0, 1], labels [N] int).") from e
  return images, labels


def tinytrain(model, num_classes=None, seed=0, **options):
  """TinyTrain's task-adaptive sparse update (see the module docstring)."""
  _check_options("tinytrain", options, TINYTRAIN_OPTIONS)
  prepared = prepare(model, num_classes, seed)
  selection = options.pop("selection", None)
  support = options.pop("support", None)
  if selection is None:
    if support is None:
      raise ValueError(
          "method 'tinytrain' selects layers and channels on the user's "
          "samples: pass support=(images, labels) (a few labelled images per "
          "class) or a ready selection=tflite_tl.sparse.Selection.")
    images, labels = _support(support)
    if options.get("memory_budget") is None and options.get(
        "compute_budget") is None:
      options["memory_budget"] = DEFAULT_MEMORY_BUDGET
    selection = sparse_lib.select(prepared, images, labels, seed=seed,
                                  **options)
  elif options:
    raise ValueError(f"method 'tinytrain': options {sorted(options)} are for "
                     "selecting; with a ready selection= pass none of them.")
  return channel_sparse.apply_selection(prepared, selection)


def sparse_update(model, num_classes=None, seed=0, **options):
  """The static sparse-update scheme (see the module docstring)."""
  _check_options("sparse_update", options, SPARSE_UPDATE_OPTIONS)
  prepared = prepare(model, num_classes, seed)
  selection = options.pop("selection", None)
  if selection is None:
    selection = sparse_lib.sparse_update_scheme(prepared, seed=seed,
                                                **options)
  elif options:
    raise ValueError(f"method 'sparse_update': options {sorted(options)} "
                     "build the scheme; with a ready selection= pass none.")
  return channel_sparse.apply_selection(prepared, selection)


selection_of = channel_sparse.selection_of
