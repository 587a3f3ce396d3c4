"""tflite-tl: on-device transfer learning for microcontrollers on stock TFLM.

Importing this package makes TensorFlow use Keras 2 (tf-keras); import it before
``tensorflow``.
"""
from tflite_tl import _compat  # noqa: F401  (must run before anything imports TF)
from tflite_tl._compat import KerasVersionError

__version__ = "0.1.0"
