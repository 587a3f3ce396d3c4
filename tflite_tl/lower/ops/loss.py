"""Softmax cross-entropy on integer labels, with optional label smoothing.

labels are int32 class indices [B]. TFLM has no ONE_HOT (and the converter
turns EQUAL+SELECT against a range into ONE_HOT), so the one-hot target is
RELU(1 - |float(label) - k|), exact for integer labels. Loss is the
batch mean of -sum(target * LOG_SOFTMAX(logits)); the gradient is
(softmax - target) / B. Kept for the backward pass: softmax and target [B,K].
"""
import numpy as np

from tflite_tl._compat import tf


def one_hot(labels, num_classes: int, label_smoothing: float = 0.0):
  """Smoothed one-hot targets [B, K] from int32 ``labels`` [B]."""
  classes = tf.constant(np.arange(num_classes, dtype=np.float32)[None, :])
  distance = tf.abs(tf.reshape(tf.cast(labels, tf.float32), [-1, 1]) - classes)
  hot = tf.nn.relu(1.0 - distance)
  if not label_smoothing:
    return hot
  return hot * (1.0 - label_smoothing) + label_smoothing / num_classes


def make_softmax_cross_entropy(*, num_classes: int, batch_size: int,
                               label_smoothing: float = 0.0):
  """Builds ``loss(logits, labels) -> scalar`` (gradient w.r.t. logits)."""
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")

  def loss(logits, labels):
    target = one_hot(labels, num_classes, label_smoothing)
    return _xent(logits, target)

  @tf.custom_gradient
  def _xent(logits, target):
    log_probs = tf.nn.log_softmax(logits)
    value = -tf.reduce_sum(target * log_probs) * (1.0 / batch_size)
    probs = tf.exp(log_probs)

    def grad(dloss):
      return (probs - target) * (dloss / batch_size), None

    return value, grad

  return loss
