"""Small models built with keras.applications' own block code, for tests.

The full keras.applications networks take minutes to lower on 2 cores; these
minis use the same tf-keras functions (MobileNetV3's ``_inverted_res_block``
with hard-swish and squeeze-and-excitation, EfficientNet's ``block`` with
swish, squeeze-and-excitation and drop-connect, MobileNetV2's
``_inverted_res_block`` with ZeroPadding2D) at a fraction of the size, so
every layer pattern of the real networks is present. The full networks are
covered by the slow tests and benchmarks/own_models.py.
"""
import numpy as np

# tflite_tl first: it selects tf-keras before TensorFlow loads.
from tflite_tl._compat import keras
from tflite_tl.models import calibrate_batch_norm
from tf_keras.src.applications import efficientnet as efficientnet_lib  # noqa: E402  pylint: disable=wrong-import-order
from tf_keras.src.applications import mobilenet_v2 as mobilenet_v2_lib  # noqa: E402  pylint: disable=wrong-import-order
from tf_keras.src.applications import mobilenet_v3 as mobilenet_v3_lib  # noqa: E402  pylint: disable=wrong-import-order


def mobilenet_v3_mini(resolution=32, include_preprocessing=True):
  """Stem, a stride-2 ReLU+SE block, a stride-2 hard-swish+SE block with
  expansion and a residual one, MobileNetV3's head (1x1 conv classifier)."""
  v3 = mobilenet_v3_lib

  def stack_fn(x, kernel, activation, se_ratio):
    x = v3._inverted_res_block(x, 1, 8, 3, 2, se_ratio, v3.relu, 0)  # pylint: disable=protected-access
    x = v3._inverted_res_block(x, 4, 16, kernel, 2, se_ratio, activation, 1)  # pylint: disable=protected-access
    return v3._inverted_res_block(x, 3, 16, kernel, 1, se_ratio, activation, 2)  # pylint: disable=protected-access

  return v3.MobileNetV3(
      stack_fn, 64, input_shape=(resolution, resolution, 3), alpha=1.0,
      model_type="Mini", minimalistic=False, include_top=True, weights=None,
      input_tensor=None, classes=10, pooling=None, dropout_rate=0.2,
      classifier_activation="softmax",
      include_preprocessing=include_preprocessing)


def efficientnet_mini(resolution=32):
  """EfficientNet's stem, an MBConv1 block and two MBConv6 blocks (the
  second residual, with drop-connect), its Rescaling/Normalization input."""
  blocks = [
      dict(kernel_size=3, repeats=1, filters_in=32, filters_out=16,
           expand_ratio=1, id_skip=True, strides=1, se_ratio=0.25),
      dict(kernel_size=3, repeats=2, filters_in=16, filters_out=24,
           expand_ratio=6, id_skip=True, strides=2, se_ratio=0.25)]
  return efficientnet_lib.EfficientNet(
      0.25, 1.0, resolution, 0.2, model_name="efficientnet_mini",
      blocks_args=blocks, input_shape=(resolution, resolution, 3),
      weights=None, classes=10)


def mobilenet_v2_mini(resolution=32):
  """MobileNetV2's stem, three of its blocks (stride-2 ones with
  ZeroPadding2D, one residual), its last conv and Dense classifier."""
  v2 = mobilenet_v2_lib
  if v2.layers is None:  # set by MobileNetV2() on first use, as it does
    v2.layers = v2.VersionAwareLayers()
  inputs = keras.Input((resolution, resolution, 3))
  x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False,
                          name="Conv1")(inputs)
  x = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.999,
                                      name="bn_Conv1")(x)
  x = keras.layers.ReLU(6.0, name="Conv1_relu")(x)
  x = v2._inverted_res_block(x, filters=8, alpha=1.0, stride=1, expansion=1,  # pylint: disable=protected-access
                             block_id=0)
  x = v2._inverted_res_block(x, filters=16, alpha=1.0, stride=2, expansion=6,  # pylint: disable=protected-access
                             block_id=1)
  x = v2._inverted_res_block(x, filters=16, alpha=1.0, stride=1, expansion=6,  # pylint: disable=protected-access
                             block_id=2)
  x = keras.layers.Conv2D(64, 1, use_bias=False, name="Conv_1")(x)
  x = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.999,
                                      name="Conv_1_bn")(x)
  x = keras.layers.ReLU(6.0, name="out_relu")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  outputs = keras.layers.Dense(10, activation="softmax",
                               name="predictions")(x)
  return keras.Model(inputs, outputs, name="mobilenetv2_mini")


def sequential_cnn(resolution=20, channels=1):
  """The Keras MNIST example's shape: conv-relu, max-pool, conv-relu,
  max-pool, Flatten, Dropout, Dense softmax."""
  return keras.Sequential([
      keras.Input((resolution, resolution, channels)),
      keras.layers.Conv2D(8, 3, activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Conv2D(8, 3, activation="relu"),
      keras.layers.MaxPooling2D(),
      keras.layers.Flatten(),
      keras.layers.Dropout(0.5),
      keras.layers.Dense(10, activation="softmax"),
  ], name="sequential_cnn")


# name -> (builder, pixel range its own input expects)
MINIS = {
    "mobilenet_v2_mini": (mobilenet_v2_mini, 1.0),
    "mobilenet_v3_mini": (mobilenet_v3_mini, 255.0),
    "efficientnet_mini": (efficientnet_mini, 255.0),
    "sequential_cnn": (sequential_cnn, 1.0),
}


def calibrated(name, seed=0):
  """Mini ``name`` with seeded weights and BatchNorm statistics calibrated on
  seeded random images (a trained-like scale, see calibrate_batch_norm)."""
  builder, pixels = MINIS[name]
  keras.utils.set_random_seed(seed)
  model = builder()
  shape = [32] + [int(d) for d in model.inputs[0].shape[1:]]
  images = np.random.RandomState(seed).rand(*shape).astype(np.float32)
  return calibrate_batch_norm(model, images * pixels)
