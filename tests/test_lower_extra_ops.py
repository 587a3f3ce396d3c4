"""The primitives of MobileNetV3/EfficientNet/plain-CNN layers (hard-swish,
hard-sigmoid, sigmoid, swish, broadcast multiply, affine, max pooling)
against tf.GradientTape on the stock TF expressions, in TF and (converted to
a builtin-only .tflite) in the TFLM interpreter."""
import numpy as np
import pytest

from test_lower_ops import _check
from test_lower_ops import _rand
from tflite_tl._compat import tf
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.ops import elementwise
from tflite_tl.lower.ops import max_pool


def _with_boundaries(rs, shape, points):
  """Normal values times 3 with some entries exactly at ``points``."""
  x = _rand(rs, shape, 3.0)
  flat = x.reshape(-1)
  flat[:len(points)] = points
  return x


def test_hard_swish_gradient_matches_tf_including_boundaries():
  rs = np.random.RandomState(0)
  x = _with_boundaries(rs, [2, 5, 5, 4], [-3.0, 3.0, 0.0, -1.5])
  dy = _rand(rs, x.shape)
  ours = elementwise.make_hard_swish(need_input_grad=True)
  _check(lambda v: ours(v), lambda v: v * (tf.nn.relu6(v + 3.0) * (1 / 6)),
         x, [], dy)


def test_hard_swish_converts_to_the_hard_swish_builtin():
  ours = elementwise.make_hard_swish(need_input_grad=True)

  class M(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 2], tf.float32)])
    def f(self, x):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = ours(x)
      return y, tape.gradient(tf.reduce_sum(y * y), x)

  m = M()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [m.f.get_concrete_function()], m)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  ops = op_counts(converter.convert())
  assert ops.get("HARD_SWISH") == 1
  assert "RELU6" not in ops


def test_hard_sigmoid_gradient_and_mask_at_boundaries():
  rs = np.random.RandomState(1)
  x = _with_boundaries(rs, [2, 1, 1, 16], [-3.0, 3.0, 0.0])
  dy = _rand(rs, x.shape)
  ours = elementwise.make_hard_sigmoid(need_input_grad=True)
  _check(lambda v: ours(v), lambda v: tf.nn.relu6(v + 3.0) * (1 / 6),
         x, [], dy)


@pytest.mark.parametrize("name,reference", [
    ("sigmoid", tf.sigmoid), ("swish", lambda v: v * tf.sigmoid(v))])
def test_sigmoid_and_swish_gradients(name, reference):
  rs = np.random.RandomState(2)
  x = _rand(rs, [2, 4, 4, 6], 3.0)
  dy = _rand(rs, x.shape)
  factory = {"sigmoid": elementwise.make_sigmoid,
             "swish": elementwise.make_swish}[name]
  ours = factory(need_input_grad=True)
  _check(lambda v: ours(v), reference, x, [], dy)


@pytest.mark.parametrize("gate_shape", [[2, 1, 1, 8], [2, 4, 4, 8]])
def test_multiply_gradients_with_broadcast_gate(gate_shape):
  rs = np.random.RandomState(3)
  x = _rand(rs, [2, 4, 4, 8])
  gate = _rand(rs, gate_shape)
  dy = _rand(rs, [2, 4, 4, 8])
  ours = elementwise.make_multiply(in_shapes=[[2, 4, 4, 8], gate_shape],
                                   out_shape=[2, 4, 4, 8],
                                   need_input_grads=[True, True])
  _check(lambda a, b: ours(a, b), lambda a, b: a * b, x, [gate], dy)


def test_multiply_keeps_only_what_the_needed_gradients_read():
  ours = elementwise.make_multiply(in_shapes=[[1, 2, 2, 3], [1, 1, 1, 3]],
                                   out_shape=[1, 2, 2, 3],
                                   need_input_grads=[True, False])
  a = tf.constant(np.ones([1, 2, 2, 3], np.float32))
  b = tf.constant(np.full([1, 1, 1, 3], 2.0, np.float32))
  with tf.GradientTape() as tape:
    tape.watch([a, b])
    loss = tf.reduce_sum(ours(a, b))
  da, db = tape.gradient(loss, [a, b])
  np.testing.assert_array_equal(da.numpy(), np.full([1, 2, 2, 3], 2.0))
  assert db is None


def test_multiply_of_different_ranks_is_rejected():
  with pytest.raises(ValueError, match="same rank"):
    elementwise.make_multiply(in_shapes=[[1, 2, 2, 3], [1, 3]],
                              out_shape=[1, 2, 2, 3],
                              need_input_grads=[True, True])


def test_affine_gradient_per_channel():
  rs = np.random.RandomState(4)
  scale = rs.rand(3).astype(np.float32) + 0.5
  offset = rs.randn(3).astype(np.float32)
  x = _rand(rs, [2, 4, 4, 3])
  dy = _rand(rs, x.shape)
  ours = elementwise.make_affine(scale=scale, offset=offset,
                                 need_input_grad=True)
  _check(lambda v: ours(v), lambda v: v * scale + offset, x, [], dy)


@pytest.mark.parametrize("hw,pool,padding", [
    (8, 2, "VALID"), (9, 2, "VALID"), (8, 2, "SAME"), (9, 3, "VALID")])
def test_max_pool_gradient_routes_to_the_first_maximum_like_tf(hw, pool,
                                                                padding):
  rs = np.random.RandomState(5)
  # Small integers: many windows hold several equal maxima (ties), where TF
  # sends the gradient to the first one in row-major order.
  x = rs.randint(0, 3, size=[2, hw, hw, 3]).astype(np.float32)
  ours = max_pool.make_max_pool(in_shape=list(x.shape), pool=pool,
                                padding=padding, need_input_grad=True)
  out = tf.nn.max_pool2d(x, pool, pool, padding).shape.as_list()
  dy = _rand(rs, out)
  _check(lambda v: ours(v), lambda v: tf.nn.max_pool2d(v, pool, pool, padding),
         x, [], dy)


def test_same_max_pool_on_a_ragged_size_is_rejected():
  with pytest.raises(ValueError, match="multiple of the pool size"):
    max_pool.make_max_pool(in_shape=[1, 9, 9, 1], pool=2, padding="SAME",
                           need_input_grad=True)
