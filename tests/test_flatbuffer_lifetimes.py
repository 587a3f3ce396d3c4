"""Tensor lifetimes of a .tflite: the bytes alive per operator, the peak and
who is alive then, against hand counts and TFLM's measured head."""
import numpy as np
import pytest
import tensorflow as tf

from tflite_tl.flatbuffer import lifetimes
from tflite_tl.tflm import runner


class _Chain(tf.Module):
  """x [1,8,8,4] -> conv 8 -> conv 16 -> mean, plus a skip that keeps x
  alive to the end: the peak is where the widest map meets x."""

  def __init__(self):
    rng = np.random.default_rng(0)
    self.w1 = tf.constant(rng.normal(size=(3, 3, 4, 8)), tf.float32)
    self.w2 = tf.constant(rng.normal(size=(1, 1, 8, 16)), tf.float32)

  @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 4], tf.float32)])
  def __call__(self, x):
    a = tf.nn.relu(tf.nn.conv2d(x, self.w1, 1, "SAME"))
    b = tf.nn.conv2d(a, self.w2, 1, "SAME")
    pooled = tf.reduce_mean(b, axis=[1, 2])
    return pooled + tf.reduce_sum(x)


@pytest.fixture(scope="module")
def chain():
  module = _Chain()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.__call__.get_concrete_function()], module)
  return bytes(converter.convert())


def test_lifetimes_follow_the_operators(chain):
  tensors, ops = lifetimes.tensor_lifetimes(chain)
  assert "CONV_2D" in ops
  by_bytes = {t.bytes: t for t in tensors}
  # The input (1 KB) lives from the first operator to the one summing it.
  x = by_bytes[8 * 8 * 4 * 4]
  assert x.first == 0 and x.last >= 1
  # No constant is planned: the filters have data.
  assert all(t.bytes != 3 * 3 * 4 * 8 * 4 for t in tensors)
  for t in tensors:
    assert 0 <= t.first <= t.last < len(ops)
    assert t.bytes % lifetimes.ALIGNMENT == 0


def test_peak_is_the_widest_map_with_what_it_meets(chain):
  profile = lifetimes.live_profile(chain)
  tensors, _ = lifetimes.tensor_lifetimes(chain)
  # Brute force: at every operator, the sum of tensors whose life covers it.
  want = [sum(t.bytes for t in tensors if t.first <= i <= t.last)
          for i in range(len(profile.live_bytes))]
  assert list(profile.live_bytes) == want
  assert profile.peak_bytes == max(want)
  # The 16-channel map (4 KB) is the largest tensor alive at the peak.
  assert profile.at_peak[0].bytes == 8 * 8 * 16 * 4
  assert [t.bytes for t in profile.at_peak] == sorted(
      (t.bytes for t in profile.at_peak), reverse=True)
  assert sum(t.bytes for t in profile.at_peak) == profile.peak_bytes
  text = profile.describe()
  assert f"{profile.peak_bytes:,} B" in text and "modelled" in text
  assert profile.to_dict()["at_peak"][0]["shape"] == list(
      profile.at_peak[0].shape)


def test_peak_bounds_tflm_measured_head(chain):
  # The planner cannot overlap tensors alive together: the modelled peak is
  # a lower bound of the measured head (which adds kernel scratch).
  measured = runner.measure_arena(chain)
  profile = lifetimes.live_profile(chain)
  assert profile.peak_bytes <= measured.head
  assert measured.head - profile.peak_bytes < 0.25 * measured.head


def test_a_lowered_train_step_names_its_peak():
  from tflite_tl import models as models_lib
  from tflite_tl import rewrite
  from tflite_tl.lower.lowering import lower_model
  backbone = models_lib.get_model("tiny", resolution=16, input_channels=1)
  model = rewrite.apply_method(backbone, "tinytl_b", num_classes=3, seed=0)
  train = lower_model(model, batch_size=2, learning_rate=0.05).train_tflite
  profile = lifetimes.live_profile(train)
  measured = runner.measure_arena(train)
  # The builtin step's kernels request little scratch: the lifetimes
  # explain its head (measured 24,096 B, modelled the same, at 16 px).
  assert 0 < profile.peak_bytes <= measured.head
  assert measured.head - profile.peak_bytes < 0.1 * measured.head
  assert profile.peak_op_name == lifetimes.tensor_lifetimes(train)[1][
      profile.peak_op]
