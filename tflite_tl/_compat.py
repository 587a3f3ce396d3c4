"""Single place that imports TensorFlow with Keras 2 (tf-keras) active.

Every module of the package imports ``tf`` and ``keras`` from here, never
``tensorflow`` directly, so that Keras 2 is selected first (see _keras_env).
"""
from tflite_tl._keras_env import KerasVersionError
from tflite_tl._keras_env import select_legacy_keras

select_legacy_keras()

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras", "KerasVersionError"]
