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


def package_spec(device_name="esp32", name="tiny_lib"):
  """A BuildSpec of TinyStep's models (an ESP32 device gets both the Arduino
  library and the ESP-IDF component)."""
  # Lazy: the other fixtures must stay importable without the later stages.
  from tflite_tl import devices  # pylint: disable=import-outside-toplevel
  from tflite_tl.firmware import package  # pylint: disable=import-outside-toplevel
  from tflite_tl.flatbuffer import reader  # pylint: disable=import-outside-toplevel
  from tflite_tl.lower import quantize  # pylint: disable=import-outside-toplevel
  from tflite_tl.tflm.arena import ArenaReport  # pylint: disable=import-outside-toplevel
  from tflite_tl.tflm.runner import train_inputs_order  # pylint: disable=import-outside-toplevel
  m = TinyStep()
  train, predict = convert(m, m.train_step), convert(m, m.predict)
  int8 = quantize.quantize_int8(keras_classifier(), calibration_images())
  images, labels = train_inputs_order(train)
  return package.BuildSpec(
      name=name, model_name="tiny", method="tinytl_b",
      device=devices.get_device(device_name), train_tflite=train,
      predict_tflite=predict, infer_int8_tflite=int8,
      train_info=reader.model_info(train),
      predict_info=reader.model_info(predict),
      infer_int8_info=reader.model_info(int8),
      train_images_input=images, train_labels_input=labels,
      batch_size=BATCH, image_shape=IMAGE, class_names=("a", "b", "c"),
      arena=package.shared_arena_bytes(ArenaReport(1000, 600, 400, {}),
                                       ArenaReport(700, 500, 200, {})),
      max_samples=4)
