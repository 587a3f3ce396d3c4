"""Episodic meta-training of a backbone, ProtoNet-style (host training).

TinyTrain (Kwon et al., ICML 2024) meta-trains the pretrained backbone on
few-shot episodes before deployment, so that it adapts from a handful of
samples. Prototypical networks (Snell et al., NeurIPS 2017): for an episode
with support embeddings f(x) the prototype of class c is their mean p_c;
a query q is classified by softmax(-||f(q) - p_c||^2) and the loss is its
cross-entropy. Every weight of the embedding model trains (Adam);
BatchNorm applies its moving statistics (``training=False``), as in every
fine-tuning here, so the statistics stay those of pretraining.
"""
import dataclasses
from typing import List, Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.data.episodes import Episode
from tflite_tl.data.episodes import sample_episode
from tflite_tl.train.loop import seed_everything


def prototype_logits(support, support_labels, query, ways: int):
  """-squared Euclidean distance of each query embedding to each prototype."""
  onehot = tf.one_hot(support_labels, ways, dtype=support.dtype)
  prototypes = tf.matmul(onehot, support, transpose_a=True) / tf.reduce_sum(
      onehot, axis=0)[:, None]
  distance = (tf.reduce_sum(tf.square(query), 1, keepdims=True)
              - 2.0 * tf.matmul(query, prototypes, transpose_b=True)
              + tf.reduce_sum(tf.square(prototypes), 1)[None, :])
  return -distance


def _embed(model, x):
  return tf.reshape(model(x, training=False), [tf.shape(x)[0], -1])


class _Step:
  """One ProtoNet step (a callable object: one trace per meta-training)."""

  def __init__(self, model, optimizer, ways):
    self._model = model
    self._optimizer = optimizer
    self._ways = ways

  def __call__(self, sx, sy, qx, qy):
    variables = self._model.trainable_weights
    with tf.GradientTape() as tape:
      logits = prototype_logits(_embed(self._model, sx), sy,
                                _embed(self._model, qx), self._ways)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=qy, logits=logits))
    self._optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                        variables))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(
        tf.argmax(logits, -1), qy), tf.float32))
    return loss, accuracy


@dataclasses.dataclass
class MetaHistory:
  """Mean query loss and accuracy per block of ``log_every`` episodes."""
  loss: List[float] = dataclasses.field(default_factory=list)
  accuracy: List[float] = dataclasses.field(default_factory=list)


def meta_train(embedding: keras.Model, x: np.ndarray, y: np.ndarray, *,
               episodes: int, ways: int = 5, shots: int = 5,
               queries: int = 15, learning_rate: float = 1e-3, seed: int = 0,
               log_every: int = 100) -> MetaHistory:
  """Meta-trains ``embedding`` (images -> features) on episodes of (x, y).

  Args:
    embedding: a Keras model from images to feature vectors (e.g. the
      backbone up to its global pooling); its trainable weights train.
    x, y: the meta-training set (images in [0, 1], int labels).
    episodes: number of episodes (one Adam step each).
    ways, shots, queries: the episodes' shape.
    learning_rate: Adam step size, cosine-decayed to zero.
    seed: seeds the episode sequence (episode i depends on (seed, i)).
    log_every: episodes per entry of the returned history.
  """
  if episodes < 1:
    raise ValueError(f"meta_train: episodes must be >= 1, got {episodes}.")
  if not embedding.trainable_weights:
    raise ValueError(f"meta_train: model {embedding.name!r} has no trainable "
                     "weights.")
  seed_everything(seed)
  schedule = keras.optimizers.schedules.CosineDecay(learning_rate, episodes)
  optimizer = keras.optimizers.Adam(learning_rate=schedule)
  step = tf.function(_Step(embedding, optimizer, ways), reduce_retracing=True)
  x = np.asarray(x, np.float32)
  history, losses, accuracies = MetaHistory(), [], []
  for i in range(episodes):
    ep = sample_episode(x, y, ways=ways, shots=shots, queries=queries,
                        rng=np.random.RandomState([seed, i]))
    loss, accuracy = step(tf.constant(ep.support_x), tf.constant(ep.support_y),
                          tf.constant(ep.query_x), tf.constant(ep.query_y))
    losses.append(float(loss))
    accuracies.append(float(accuracy))
    if len(losses) == log_every or i == episodes - 1:
      history.loss.append(float(np.mean(losses)))
      history.accuracy.append(float(np.mean(accuracies)))
      losses, accuracies = [], []
  return history


def prototype_accuracy(embedding: keras.Model, episode: Episode,
                       batch_size: Optional[int] = 256) -> float:
  """Query accuracy of nearest-prototype classification (no training)."""
  def embed(images):
    return tf.concat([_embed(embedding, tf.constant(images[i:i + batch_size]))
                      for i in range(0, len(images), batch_size)], 0)
  logits = prototype_logits(embed(episode.support_x), episode.support_y,
                            embed(episode.query_x), episode.ways)
  return float(np.mean(np.argmax(logits.numpy(), -1) == episode.query_y))


def embedding_model(model: keras.Model, layer_name: str) -> keras.Model:
  """The sub-model of ``model`` from its input to ``layer_name``'s output
  (shares the weights: meta-training it trains ``model``)."""
  return keras.Model(model.inputs, model.get_layer(layer_name).output,
                     name=f"{model.name}_embedding")
