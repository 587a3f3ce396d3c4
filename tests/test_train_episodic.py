"""ProtoNet episodic meta-training."""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl import data
from tflite_tl import train


def test_prototype_logits_are_negative_squared_distances():
  support = tf.constant([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
  labels = tf.constant([0, 0, 1])
  query = tf.constant([[1.0, 1.0]])
  logits = train.prototype_logits(support, labels, query, 2).numpy()
  np.testing.assert_allclose(logits, [[-1.0, -10.0]], atol=1e-5)


def _toy(seed=0):
  """Each class a faint fixed texture under strong noise."""
  rs = np.random.RandomState(seed)
  templates = rs.rand(6, 6, 6, 1)
  y = np.repeat(np.arange(6), 25)
  x = 0.5 * templates[y] + 0.5 * rs.rand(len(y), 6, 6, 1)
  return x.astype(np.float32), y


def test_meta_training_improves_prototype_accuracy():
  keras.utils.set_random_seed(0)
  inp = keras.Input((6, 6, 1))
  h = keras.layers.Conv2D(4, 3, activation="relu", name="c")(inp)
  h = keras.layers.Flatten(name="pool")(h)
  model = keras.Model(inp, keras.layers.Dense(6, name="fc")(h))
  embedding = train.embedding_model(model, "pool")
  x, y = _toy()
  test = data.episodes(x, y, ways=3, shots=2, queries=5, count=10, seed=9)
  before = np.mean([train.prototype_accuracy(embedding, e) for e in test])
  history = train.meta_train(embedding, x, y, episodes=150, ways=3, shots=2,
                             queries=5, learning_rate=1e-2, log_every=50)
  after = np.mean([train.prototype_accuracy(embedding, e) for e in test])
  assert len(history.loss) == 3 and history.loss[-1] < history.loss[0]
  assert after > before
  # The embedding shares the model's weights.
  assert model.get_layer("c").kernel is embedding.get_layer("c").kernel
