"""Weight-standardised convolution, as TinyTL uses inside lite residual branches.

TinyTL fine-tunes with batches of 1-8 samples, where BatchNorm statistics are
noise. Its lite residual branches therefore pair GroupNorm with weight
standardisation (Qiao et al., "Micro-Batch Training with Batch-Channel
Normalization and Weight Standardization", 2019), which keeps the conv's
output scale independent of the kernel's raw scale without any batch
statistics.

Math. For a kernel ``W`` of shape ``(kh, kw, cin_per_group, cout)`` each output
channel ``o`` is standardised over its fan-in ``N = kh * kw * cin_per_group``::

    mu_o     = (1 / N) * sum_{i,j,c} W[i, j, c, o]
    var_o    = (1 / N) * sum_{i,j,c} (W[i, j, c, o] - mu_o) ** 2
    W_hat[i, j, c, o] = (W[i, j, c, o] - mu_o) / sqrt(var_o + epsilon)

and the layer computes ``conv(x, W_hat) (+ bias)``. The variance is the
population variance (divide by ``N``) so that a fan-in of 1 (a 1x1 conv with
one input channel per group) stays defined; ``epsilon`` (default 1e-5, the
value TinyTL uses) sits inside the square root. TinyTL's PyTorch code divides
by ``std_unbiased + epsilon`` instead; the two differ by well under 1 % for
fan-ins above ~50 and the branch is trained from scratch either way.

The stored weight stays the raw ``W``: gradients flow through the
standardisation, and a lowered train step must apply the same formula.
"""
from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers.partial import Conv2D

_PACKAGE = "tflite_tl"


def standardize_kernel(kernel, epsilon: float):
  """Returns ``kernel`` standardised per output channel (last axis).

  Args:
    kernel: a rank-4 ``(kh, kw, cin_per_group, cout)`` tensor.
    epsilon: added to the variance inside the square root.
  """
  mean = tf.reduce_mean(kernel, axis=(0, 1, 2), keepdims=True)
  centred = kernel - mean
  variance = tf.reduce_mean(tf.square(centred), axis=(0, 1, 2), keepdims=True)
  return centred * tf.math.rsqrt(variance + epsilon)


@keras.utils.register_keras_serializable(package=_PACKAGE)
class WSConv2D(Conv2D):
  """``Conv2D`` (per-weight trainable) that convolves with a standardised kernel.

  See the module docstring for the formula. Accepts every ``Conv2D`` argument
  (including ``groups`` and ``trainable_weight_names``) plus ``epsilon``.
  """

  def __init__(self, *args, epsilon: float = 1e-5, **kwargs):
    super().__init__(*args, **kwargs)
    if not epsilon > 0:
      raise ValueError(
          f"WSConv2D '{self.name}': epsilon must be > 0, got {epsilon}.")
    self.epsilon = float(epsilon)

  def standardized_kernel(self):
    """The kernel the layer actually convolves with."""
    return standardize_kernel(self.kernel, self.epsilon)

  def convolution_op(self, inputs, kernel):
    return super().convolution_op(
        inputs, standardize_kernel(kernel, self.epsilon))

  def get_config(self):
    config = super().get_config()
    config["epsilon"] = self.epsilon
    return config
