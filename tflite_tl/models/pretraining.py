"""Pretraining recipe for the shipped backbones (host CPU, from scratch).

``pretrain`` builds a zoo model, trains it with ``tflite_tl.train.fit`` on a
``tflite_tl.data`` dataset and returns the model plus the record that
``tflite_tl.models.pretrained.write_pretrained`` stores next to the weights.

Recipe: Adam with a cosine learning-rate decay to zero, label smoothing,
random horizontal flips and small random shifts, BatchNorm in batch-statistics
mode (``training=True``; the moving statistics the device uses are what the
model keeps). Everything is seeded: the same arguments give the same weights.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np

from tflite_tl._compat import keras, tf
from tflite_tl.models.registry import builder_arguments, get_model

# The fixed test slice whose accuracy the record stores and the tests check.
SLICE_START = 0
SLICE_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class Recipe:
  """Training hyper-parameters of one pretraining run."""
  epochs: int = 10
  batch_size: int = 128
  learning_rate: float = 2e-3
  label_smoothing: float = 0.1
  max_shift: int = 2
  flip: bool = True
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class Preset:
  """Builder arguments and recipe of a shipped backbone."""
  model: str
  builder_kwargs: Dict[str, Any]
  recipe: Recipe


# The backbones shipped in tflite_tl/models/pretrained/ (see docs/models.md
# for why these sizes): grayscale Fashion-MNIST, 10 classes.
PRESETS: Dict[str, Preset] = {
    "tiny": Preset("tiny", dict(resolution=32, input_channels=1,
                                num_classes=10),
                   Recipe(epochs=15, learning_rate=5e-3)),
    "mcunet": Preset("mcunet", dict(resolution=48, input_channels=1,
                                    num_classes=10, width_multiplier=0.5),
                     Recipe(epochs=10)),
    "mobilenet_v2": Preset("mobilenet_v2", dict(
        resolution=32, input_channels=1, num_classes=10, width_multiplier=0.35,
        last_channels=256), Recipe(epochs=8)),
}


def flip_and_shift(max_shift: int, flip: bool):
  """An ``augment(images, rng)`` for ``fit``: random left-right flip and a
  random translation of up to ``max_shift`` pixels, filled with zeros (the
  background of Fashion-MNIST-like images)."""

  def augment(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    n, h, w, _ = images.shape
    out = images
    if flip:
      flips = rng.rand(n) < 0.5
      out = np.where(flips[:, None, None, None], out[:, :, ::-1, :], out)
    if max_shift > 0:
      s = max_shift
      padded = np.pad(out, ((0, 0), (s, s), (s, s), (0, 0)))
      dy = rng.randint(0, 2 * s + 1, size=n)
      dx = rng.randint(0, 2 * s + 1, size=n)
      out = np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
                      for i in range(n)])
    return out.astype(np.float32)

  return augment


def command_line(name: str, dataset: str, builder_kwargs: Dict[str, Any],
                 recipe: Recipe, model: str) -> str:
  """The ``benchmarks.pretrain`` invocation that reproduces a run."""
  flags = [f"--model={model}", f"--name={name}", f"--dataset={dataset}",
           f"--resolution={builder_kwargs['resolution']}",
           f"--channels={builder_kwargs['input_channels']}"]
  if "width_multiplier" in builder_kwargs:
    flags.append(f"--width_multiplier={builder_kwargs['width_multiplier']}")
  if builder_kwargs.get("last_channels") is not None:
    flags.append(f"--last_channels={builder_kwargs['last_channels']}")
  flags += [f"--epochs={recipe.epochs}", f"--batch_size={recipe.batch_size}",
            f"--learning_rate={recipe.learning_rate}",
            f"--label_smoothing={recipe.label_smoothing}",
            f"--max_shift={recipe.max_shift}",
            f"--flip={str(recipe.flip).lower()}", f"--seed={recipe.seed}"]
  return "python -m benchmarks.pretrain " + " ".join(flags)


def _builder_kwargs(model: str, resolution: int, channels: int,
                    num_classes: int, width_multiplier: Optional[float],
                    last_channels: Optional[int]) -> Dict[str, Any]:
  accepted = builder_arguments(model)
  kwargs = dict(resolution=resolution, input_channels=channels,
                num_classes=num_classes)
  if width_multiplier is not None:
    if "width_multiplier" not in accepted:
      raise ValueError(f"Model {model!r} has no width_multiplier; leave it "
                       "unset.")
    kwargs["width_multiplier"] = width_multiplier
  if last_channels is not None:
    if "last_channels" not in accepted:
      raise ValueError(f"Model {model!r} has no last_channels; leave it unset.")
    kwargs["last_channels"] = last_channels
  return kwargs


def pretrain(model: str, *, dataset: str = "fashion_mnist", resolution: int,
             channels: int, width_multiplier: Optional[float] = None,
             last_channels: Optional[int] = None, recipe: Recipe = Recipe(),
             name: Optional[str] = None, progress: bool = True,
             max_train_samples: Optional[int] = None
             ) -> Tuple[keras.Model, Dict[str, Any]]:
  """Trains a zoo model from scratch and measures it.

  Args:
    model: registry name (``tflite_tl.models.list_models()``).
    dataset: ``tflite_tl.data`` dataset name.
    resolution, channels: input size the data is loaded at.
    width_multiplier, last_channels: builder arguments (None: builder default).
    recipe: training hyper-parameters.
    name: name of the backbone in the record (default: ``model``).
    progress: show progress bars.
    max_train_samples: train on the first N training samples only (smoke
      runs); the record says so.

  Returns:
    (trained model, record for ``write_pretrained``).
  """
  # Imported here: the data and train packages pull in readers and the
  # training loop, which building models alone does not need.
  from tflite_tl import data  # pylint: disable=g-import-not-at-top
  from tflite_tl import train  # pylint: disable=g-import-not-at-top

  name = name or model
  ds = data.load(dataset, resolution=resolution, channels=channels,
                 seed=recipe.seed)
  x_train, y_train = ds.x_train, ds.y_train
  if max_train_samples is not None:
    x_train, y_train = x_train[:max_train_samples], y_train[:max_train_samples]
  kwargs = _builder_kwargs(model, resolution, channels, ds.num_classes,
                           width_multiplier, last_channels)
  # Seed before building so the initial weights are reproducible too.
  train.seed_everything(recipe.seed)
  net = get_model(model, **kwargs)
  steps = recipe.epochs * -(-len(x_train) // recipe.batch_size)
  schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate,
                                                    max(steps, 1))
  optimizer = keras.optimizers.Adam(learning_rate=schedule)
  history = train.fit(
      net, x_train, y_train, epochs=recipe.epochs,
      batch_size=recipe.batch_size, optimizer=optimizer,
      label_smoothing=recipe.label_smoothing, seed=recipe.seed,
      progress=progress, augment=flip_and_shift(recipe.max_shift, recipe.flip),
      training=True)
  end = SLICE_START + SLICE_SIZE
  record = {
      "model": model,
      "builder_kwargs": kwargs,
      "dataset": dataset,
      "class_names": list(ds.class_names),
      "resolution": resolution,
      "input_channels": channels,
      "num_classes": ds.num_classes,
      "parameters": int(net.count_params()),
      "recipe": dict(dataclasses.asdict(recipe), optimizer="adam",
                     schedule="cosine decay to 0", batchnorm="batch statistics",
                     train_samples=int(len(x_train))),
      "command": command_line(name, dataset, kwargs, recipe, model) + (
          f" --max_train_samples={max_train_samples}"
          if max_train_samples is not None else ""),
      "final_train_loss": round(float(history.loss[-1]), 6),
      "test_accuracy": float(train.evaluate(net, ds.x_test, ds.y_test)),
      "test_samples": int(len(ds.y_test)),
      "slice": {"start": SLICE_START, "size": SLICE_SIZE,
                "accuracy": float(train.evaluate(
                    net, ds.x_test[SLICE_START:end],
                    ds.y_test[SLICE_START:end]))},
      "tensorflow": tf.__version__,
  }
  return net, record


def config_from_overrides(model: str, name: Optional[str],
                          builder_overrides: Dict[str, Any],
                          recipe_overrides: Dict[str, Any]) -> Dict[str, Any]:
  """Merges flag values (None = not given) over the preset of ``name``.

  The preset is looked up by ``name`` (default: ``model``); a model without a
  preset needs ``resolution`` and ``channels``.

  Returns:
    Keyword arguments for :func:`pretrain`.
  """
  name = name or model
  preset = PRESETS.get(name)
  if preset is not None and preset.model != model:
    preset = None  # A user name that happens to match another model's preset.
  base = dict(preset.builder_kwargs) if preset else {}
  config = {
      "model": model,
      "name": name,
      "resolution": base.get("resolution"),
      "channels": base.get("input_channels"),
      "width_multiplier": base.get("width_multiplier"),
      "last_channels": base.get("last_channels"),
  }
  config.update({k: v for k, v in builder_overrides.items() if v is not None})
  if config["resolution"] is None or config["channels"] is None:
    raise ValueError(f"Model {model!r} has no pretraining preset (presets: "
                     f"{', '.join(sorted(PRESETS))}); pass --resolution and "
                     "--channels.")
  recipe = preset.recipe if preset else Recipe()
  config["recipe"] = dataclasses.replace(
      recipe, **{k: v for k, v in recipe_overrides.items() if v is not None})
  return config
