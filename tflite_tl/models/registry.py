"""Name -> builder registry, so flags and configs can name a model.

Builders are plain functions returning a functional tf-keras model, called with
keyword arguments (``resolution``, ``input_channels``, ``num_classes``
and, where meaningful, ``width_multiplier``). Users add their own with
:func:`register_model`.
"""
import inspect
from typing import Callable, Dict, List

from tflite_tl._compat import keras
from tflite_tl.models.mcunet_tinynas import mcunet
from tflite_tl.models.mobilenetv2 import mobilenet_v2
from tflite_tl.models.proxyless import proxyless_mobile
from tflite_tl.models.tinynet import tiny

ModelBuilder = Callable[..., keras.Model]

_BUILDERS: Dict[str, ModelBuilder] = {
    "mcunet": mcunet,
    "mobilenet_v2": mobilenet_v2,
    "proxyless_mobile": proxyless_mobile,
    "tiny": tiny,
}


def list_models() -> List[str]:
  """Names accepted by :func:`get_model`, sorted."""
  return sorted(_BUILDERS)


def register_model(name: str, builder: ModelBuilder,
                   overwrite: bool = False) -> None:
  """Makes ``builder`` available as ``get_model(name, ...)``.

  Args:
    name: registry key (non-empty string).
    builder: callable taking keyword arguments and returning a keras.Model.
    overwrite: replace an existing entry instead of raising.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f"Model name must be a non-empty string, got {name!r}.")
  if not callable(builder):
    raise TypeError(f"Builder for model {name!r} must be callable, got "
                    f"{type(builder).__name__}.")
  if name in _BUILDERS and not overwrite:
    raise ValueError(f"Model {name!r} is already registered; pass "
                     "overwrite=True to replace it.")
  _BUILDERS[name] = builder


def get_builder(name: str) -> ModelBuilder:
  """The builder registered under ``name``; ValueError listing names if none."""
  try:
    return _BUILDERS[name]
  except (KeyError, TypeError):
    raise ValueError(f"Unknown model {name!r}. Known models: "
                     f"{', '.join(list_models())}. Register your own with "
                     "tflite_tl.models.register_model(name, builder).") from None


def builder_arguments(name: str) -> List[str]:
  """Keyword arguments the builder of ``name`` accepts."""
  parameters = inspect.signature(get_builder(name)).parameters.values()
  return [p.name for p in parameters
          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def get_model(name: str, **kwargs) -> keras.Model:
  """Builds the model registered under ``name`` with builder ``kwargs``.

  Raises:
    ValueError: unknown name, or an argument the builder does not take.
  """
  builder = get_builder(name)
  parameters = inspect.signature(builder).parameters.values()
  if not any(p.kind == p.VAR_KEYWORD for p in parameters):
    accepted = builder_arguments(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
      raise ValueError(f"Model {name!r} does not take {', '.join(unknown)}; "
                       f"it accepts: {', '.join(accepted)}.")
  return builder(**kwargs)
