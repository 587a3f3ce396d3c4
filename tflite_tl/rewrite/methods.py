"""Transfer-learning methods of TinyTL's Table 2 as one-call model rewrites.

``apply_method(model, name, num_classes=...)`` returns a new model whose
``trainable_weights`` are exactly the method's:

============  ==============================================================
ft_full       every weight: conv/dense kernels and biases, BatchNorm
              gamma/beta (BatchNorm kept, frozen statistics: the paper's
              FT-Full updates the norm layers too, and keeping them keeps
              that memory cost visible)
ft_last       the classifier only; BatchNorm folded
ft_norm_last  BatchNorm gamma/beta + classifier; BatchNorm kept
tinytl_b      every bias (BatchNorm folded into conv biases) + classifier
tinytl_l      lite residual branches + classifier; BatchNorm folded
tinytl_lb     lite residual branches + every bias + classifier
tinytrain     chosen channels of layers selected on the user's samples
              (TinyTrain: Fisher potential, memory and compute budgets),
              their biases + classifier; BatchNorm folded
sparse_update a static scheme (MIT's sparse update): biases of the last
              blocks, expansion kernels on a ratio of input channels, and
              the classifier; BatchNorm folded
============  ==============================================================

The model is first put in canonical form (:mod:`canonical`: raw TF operators
such as keras.applications' hard-swish become layers). The classifier is
replaced by a fresh one when ``num_classes`` is given.
Options: ``norm`` ("group"/"batch") and ``max_kernel_size``, ``expand``,
``skip_unexpanded``, ``seed`` for lite residual methods; ``seed`` for all;
the sparse-update methods' options are in :mod:`tflite_tl.rewrite.
sparse_methods`. Users add methods with :func:`register_method`; a method
registered with ``needs_support=True`` takes the user's labelled samples as
``support=(images, labels)`` (:func:`method_needs_support`).
"""
from typing import Callable, Dict, List, Optional

from tflite_tl._compat import keras
from tflite_tl.rewrite import canonical
from tflite_tl.rewrite import fold_bn
from tflite_tl.rewrite import head
from tflite_tl.rewrite import lite_residual
from tflite_tl.rewrite import sparse_methods
from tflite_tl.rewrite import trainability

MethodFn = Callable[..., keras.Model]
"""``fn(model, num_classes=None, **options) -> new model``."""

_REGISTRY: Dict[str, MethodFn] = {}
_NEEDS_SUPPORT = set()
_LITE_OPTIONS = ("norm", "max_kernel_size", "expand", "skip_unexpanded")


def register_method(name: str, fn: MethodFn, overwrite: bool = False,
                    needs_support: bool = False) -> None:
  """Registers ``fn(model, num_classes=None, **options)`` under ``name``.

  ``needs_support``: the method selects on the user's labelled samples and
  takes them as the option ``support=(images, labels)``.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f"register_method: name must be a non-empty string, "
                     f"got {name!r}.")
  if not callable(fn):
    raise TypeError(f"register_method: fn for '{name}' is not callable.")
  if name in _REGISTRY and not overwrite:
    raise ValueError(f"register_method: method '{name}' is already "
                     "registered; pass overwrite=True to replace it.")
  _REGISTRY[name] = fn
  _NEEDS_SUPPORT.discard(name)
  if needs_support:
    _NEEDS_SUPPORT.add(name)


def method_needs_support(name: str) -> bool:
  """Whether method ``name`` takes ``support=(images, labels)``."""
  return name in _NEEDS_SUPPORT


def list_methods() -> List[str]:
  """Names of the registered methods, sorted."""
  return sorted(_REGISTRY)


def apply_method(model: keras.Model, name: str,
                 num_classes: Optional[int] = None, **options) -> keras.Model:
  """Returns a copy of ``model`` prepared for method ``name``.

  Raises:
    ValueError: unknown method (the message lists the registered ones) or an
      option the method does not take.
  """
  if name not in _REGISTRY:
    raise ValueError(f"Unknown transfer-learning method {name!r}; registered "
                     f"methods: {', '.join(list_methods())}. Add your own "
                     "with tflite_tl.rewrite.register_method(name, fn).")
  # Methods (and the passes they use) see layers, not raw TF operators.
  model = canonical.canonicalize(model)
  return _REGISTRY[name](model, num_classes=num_classes, **options)


def _check_options(method, options, allowed):
  unknown = set(options) - set(allowed)
  if unknown:
    raise ValueError(f"method '{method}' does not take option(s) "
                     f"{sorted(unknown)}; it takes {sorted(allowed)}.")


def _prepare(model, num_classes, seed, body_rule, fold, lite_options=None):
  """Shared recipe: [fold BN] -> [lite residual] -> [new head] -> trainability.

  ``body_rule(layer)`` names the weights to train in layers that are neither
  the classifier nor a lite residual branch (those train fully). Each step
  is one graph rebuild, so methods cost two to four rebuilds.
  """
  if fold:
    model = fold_bn.fold_batch_norm(model)
  if lite_options is not None:
    model = lite_residual.insert_lite_residual(model, seed=seed,
                                               **lite_options)
  if num_classes is not None:
    model = head.replace_classifier(model, num_classes, seed=seed)
  classifier = head.find_classifier(model).name
  branch = {l.name for l in lite_residual.lite_residual_layers(model)}

  def rule(layer, current):
    del current
    if layer.name == classifier or layer.name in branch:
      return trainability.parameter_names(layer)
    return body_rule(layer)

  return trainability.set_trainable(model, rule)


def _is_norm(layer):
  return isinstance(layer, (keras.layers.BatchNormalization,
                            keras.layers.GroupNormalization,
                            keras.layers.LayerNormalization))


def ft_full(model, num_classes=None, seed=0, **options):
  _check_options("ft_full", options, ())
  return _prepare(model, num_classes, seed, trainability.parameter_names,
                  fold=False)


def ft_last(model, num_classes=None, seed=0, **options):
  _check_options("ft_last", options, ())
  return _prepare(model, num_classes, seed, lambda layer: (), fold=True)


def ft_norm_last(model, num_classes=None, seed=0, **options):
  _check_options("ft_norm_last", options, ())
  return _prepare(
      model, num_classes, seed,
      lambda layer: {"gamma", "beta"} if _is_norm(layer) else (), fold=False)


def tinytl_b(model, num_classes=None, seed=0, **options):
  _check_options("tinytl_b", options, ())
  return _prepare(model, num_classes, seed, lambda layer: {"bias"}, fold=True)


def tinytl_l(model, num_classes=None, seed=0, **options):
  _check_options("tinytl_l", options, _LITE_OPTIONS)
  return _prepare(model, num_classes, seed, lambda layer: (), fold=True,
                  lite_options=options)


def tinytl_lb(model, num_classes=None, seed=0, **options):
  _check_options("tinytl_lb", options, _LITE_OPTIONS)
  return _prepare(model, num_classes, seed, lambda layer: {"bias"},
                  fold=True, lite_options=options)


for _name, _fn in (("ft_full", ft_full), ("ft_last", ft_last),
                   ("ft_norm_last", ft_norm_last), ("tinytl_b", tinytl_b),
                   ("tinytl_l", tinytl_l), ("tinytl_lb", tinytl_lb)):
  register_method(_name, _fn)
register_method("tinytrain", sparse_methods.tinytrain, needs_support=True)
register_method("sparse_update", sparse_methods.sparse_update)
