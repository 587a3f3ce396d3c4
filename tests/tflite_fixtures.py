"""Small real models shared by the export tests (no tests here; converted,
never downloaded)."""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf

IMAGE = (2, 2, 1)
BATCH = 2
CLASSES = 3


class TinyStep(tf.Module):
  """A 4-input linear classifier with a train step and a predict function.

  Both functions use the same variables, as the lowering's modules do, so
  their .tflite files share variable names.
  """

  def __init__(self):
    super().__init__()
    rng = np.random.RandomState(0)
    self.w = tf.Variable(rng.randn(4, CLASSES).astype(np.float32), name="w")
    self.b = tf.Variable(np.zeros([CLASSES], np.float32), name="b")
    self.params = [self.w, self.b]

  def logits(self, images):
    flat = tf.reshape(images, [-1, 4])
    return tf.matmul(flat, self.w) + self.b

  @tf.function(input_signature=[
      tf.TensorSpec([BATCH] + list(IMAGE), tf.float32, "images"),
      tf.TensorSpec([BATCH], tf.int32, "labels")])
  def train_step(self, images, labels):
    # One-hot through GATHER: TFLM has no ONE_HOT kernel.
    onehot = tf.gather(tf.eye(CLASSES), labels)
    with tf.GradientTape() as tape:
      logp = tf.nn.log_softmax(self.logits(images))
      loss = -tf.reduce_mean(tf.reduce_sum(onehot * logp, axis=1))
    for var, g in zip(self.params, tape.gradient(loss, self.params)):
      var.assign_sub(0.1 * g)
    return {"loss": loss}

  @tf.function(input_signature=[
      tf.TensorSpec([1] + list(IMAGE), tf.float32, "images")])
  def predict(self, images):
    out = self.logits(images)
    for var in self.params:
      var.assign(var)
    return {"logits": out}


def convert(module, fn) -> bytes:
  conv = tf.lite.TFLiteConverter.from_concrete_functions(
      [fn.get_concrete_function()], module)
  conv.experimental_enable_resource_variables = True
  return bytes(conv.convert())


def keras_classifier():
  inp = keras.Input(IMAGE)
  x = keras.layers.Flatten()(inp)
  out = keras.layers.Dense(
      CLASSES, name="logits",
      kernel_initializer=keras.initializers.GlorotUniform(seed=0))(x)
  return keras.Model(inp, out)


def calibration_images(n=16):
  return np.random.RandomState(1).rand(n, *IMAGE).astype(np.float32)
