"""Softmax cross-entropy from logits with label smoothing.

Models in tflite-tl end in logits (no softmax layer): the lowered train step
computes the same loss from the same logits. With smoothing ``eps`` and ``K``
classes the target is ``(1 - eps) * onehot(y) + eps / K`` (Szegedy et al. 2016).
"""
from tflite_tl._compat import tf


def smoothed_targets(labels, num_classes: int, label_smoothing: float = 0.0):
  """One-hot float32 targets of int ``labels`` with ``label_smoothing``."""
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(
        f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")
  onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
  if label_smoothing == 0.0:
    return onehot
  return onehot * (1.0 - label_smoothing) + label_smoothing / num_classes


def softmax_cross_entropy(logits, labels, label_smoothing: float = 0.0):
  """Mean over the batch of the cross-entropy between softmax(logits) and labels."""
  logits = tf.convert_to_tensor(logits, tf.float32)
  targets = smoothed_targets(labels, logits.shape[-1], label_smoothing)
  return tf.reduce_mean(
      tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits))
