"""Small models and support sets shared by the sparse-update tests."""
import numpy as np

from tflite_tl._compat import keras


def mbconv_model(num_classes=3, resolution=12, seed=0):
  """stem -> [expand -> dw(s2) -> project] -> [expand -> dw -> project + add]
  -> pool -> dense: every structure the selection sees, BatchNorm-free."""
  keras.utils.set_random_seed(seed)
  inp = keras.Input((resolution, resolution, 2), name="image")
  x = keras.layers.Conv2D(6, 3, strides=1, padding="same", name="stem")(inp)
  x = keras.layers.ReLU(name="stem_relu")(x)
  x = keras.layers.Conv2D(12, 1, name="b1_expand")(x)
  x = keras.layers.ReLU(6.0, name="b1_expand_relu")(x)
  x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same",
                                   name="b1_dw")(x)
  x = keras.layers.ReLU(6.0, name="b1_dw_relu")(x)
  x = keras.layers.Conv2D(8, 1, name="b1_project")(x)
  skip = x
  x = keras.layers.Conv2D(16, 1, name="b2_expand")(x)
  x = keras.layers.ReLU(6.0, name="b2_expand_relu")(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same", name="b2_dw")(x)
  x = keras.layers.ReLU(6.0, name="b2_dw_relu")(x)
  x = keras.layers.Conv2D(8, 1, name="b2_project")(x)
  x = keras.layers.Add(name="b2_add")([skip, x])
  x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
  out = keras.layers.Dense(num_classes, name="logits")(x)
  return keras.Model(inp, out, name="mbconv")


def support(n=12, resolution=12, num_classes=3, seed=0):
  rs = np.random.RandomState(seed)
  return (rs.rand(n, resolution, resolution, 2).astype(np.float32),
          rs.randint(0, num_classes, n).astype(np.int64))
