"""Meta-training a shipped backbone on few-shot episodes (TinyTrain, Sec. 3.1).

TinyTrain pretrains the backbone, then meta-trains it episodically so that
it adapts from a few samples. ``meta_pretrain("tiny")`` starts from the
shipped ``tiny`` backbone, meta-trains it ProtoNet-style
(:mod:`tflite_tl.train.episodic`) on N-way K-shot episodes of the
meta-training dataset's training split (Fashion-MNIST by default) and
returns the model with a record for ``write_pretrained``: the
nearest-prototype accuracy on episodes of the test split before and after
(host), so the record says what meta-training did. The classifier head is
kept as it was: every transfer method replaces it.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl import data
from tflite_tl import train
from tflite_tl.models import pretrained


@dataclasses.dataclass(frozen=True)
class MetaRecipe:
  """Episodic meta-training hyper-parameters."""
  episodes: int = 2000
  ways: int = 5
  shots: int = 5
  queries: int = 15
  learning_rate: float = 1e-3
  seed: int = 0
  eval_episodes: int = 100


def embedding_layer(model) -> str:
  """The layer whose output feeds the classifier (the features): the zoo's
  models end in [Dropout ->] Dense logits."""
  layer = model.outputs[0]._keras_history.layer  # pylint: disable=protected-access
  if not isinstance(layer, keras.layers.Dense):
    raise ValueError(f"meta_pretrain: model '{model.name}' does not end in a "
                     "Dense classifier.")
  while True:
    layer = layer.input._keras_history.layer  # pylint: disable=protected-access
    if not isinstance(layer, keras.layers.Dropout):
      return layer.name


def _episode_accuracy(embedding, x, y, recipe: MetaRecipe) -> Tuple[float, float]:
  accs = [train.prototype_accuracy(embedding, e) for e in data.episodes(
      x, y, ways=recipe.ways, shots=recipe.shots, queries=recipe.queries,
      count=recipe.eval_episodes, seed=recipe.seed + 1)]
  return float(np.mean(accs)), float(1.96 * np.std(accs) / np.sqrt(len(accs)))


def meta_pretrain(init_from: str, *, dataset: str = "fashion_mnist",
                  recipe: MetaRecipe = MetaRecipe(), name: Optional[str] = None,
                  max_train_samples: Optional[int] = None
                  ) -> Tuple[keras.Model, Dict[str, Any]]:
  """Meta-trains the shipped backbone ``init_from``.

  Returns:
    (model, record for ``write_pretrained``).
  """
  base = pretrained.pretrained_info(init_from)
  model = pretrained.load_pretrained(init_from)
  kwargs = base["builder_kwargs"]
  ds = data.load(dataset, resolution=kwargs["resolution"],
                 channels=kwargs.get("input_channels", 1), seed=recipe.seed)
  x, y = ds.x_train, ds.y_train
  if max_train_samples is not None:
    x, y = x[:max_train_samples], y[:max_train_samples]
  layer = embedding_layer(model)
  embedding = train.embedding_model(model, layer)
  before = _episode_accuracy(embedding, ds.x_test, ds.y_test, recipe)
  history = train.meta_train(
      embedding, x, y, episodes=recipe.episodes, ways=recipe.ways,
      shots=recipe.shots, queries=recipe.queries,
      learning_rate=recipe.learning_rate, seed=recipe.seed)
  after = _episode_accuracy(embedding, ds.x_test, ds.y_test, recipe)
  name = name or f"{init_from}_meta"
  command = (f"python -m benchmarks.pretrain --meta_train --init_from="
             f"{init_from} --name={name} --dataset={dataset} "
             f"--episodes={recipe.episodes} --ways={recipe.ways} "
             f"--shots={recipe.shots} --queries={recipe.queries} "
             f"--learning_rate={recipe.learning_rate} --seed={recipe.seed}")
  if max_train_samples is not None:
    command += f" --max_train_samples={max_train_samples}"
  record = {k: base[k] for k in ("model", "builder_kwargs", "class_names",
                                 "resolution", "input_channels",
                                 "num_classes", "parameters") if k in base}
  record.update({
      "dataset": dataset,
      "init_from": {"name": init_from, "weights_sha256":
                    base.get("weights_sha256"), "dataset": base.get("dataset")},
      "meta_training": dict(
          dataclasses.asdict(recipe), method="prototypical networks",
          optimizer="adam, cosine decay to 0", embedding=layer,
          batchnorm="moving statistics (frozen)", train_samples=int(len(y)),
          query_loss=[round(v, 6) for v in history.loss],
          query_accuracy=[round(v, 4) for v in history.accuracy]),
      "episode_accuracy": {
          "figures": "host, nearest prototype, "
                     f"{recipe.ways}-way {recipe.shots}-shot, "
                     f"{recipe.eval_episodes} episodes of the {dataset} test "
                     "split, mean and 95% interval",
          "before": [round(v, 4) for v in before],
          "after": [round(v, 4) for v in after]},
      "command": command,
      "tensorflow": tf.__version__,
  })
  return model, record
