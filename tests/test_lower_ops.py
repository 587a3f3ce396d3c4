"""Each primitive's forward and gradients against tf.GradientTape on the stock
TF op, in TF and (converted to a builtin-only .tflite) in the TFLM interpreter."""
import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.lower.builtins import check_builtin_only
from tflite_tl.lower.ops import activation
from tflite_tl.lower.ops import conv
from tflite_tl.lower.ops import dense
from tflite_tl.lower.ops import depthwise
from tflite_tl.lower.ops import norm
from tflite_tl.lower.ops import pooling
from tflite_tl.lower.ops import resize
from tflite_tl.lower.ops import shape
from tflite_tl.lower.ops.loss import make_softmax_cross_entropy
from tflite_tl.tflm import run_model

_TOL = 2e-5


def _rand(rs, shape, scale=1.0):
  return (rs.randn(*shape) * scale).astype(np.float32)


def _grads(fn, x, params, dy):
  """(y, dx, dparams) of sum(fn(x, *params) * dy) via tf.GradientTape."""
  x = tf.constant(x)
  params = [tf.constant(p) for p in params]
  with tf.GradientTape() as tape:
    tape.watch([x] + params)
    y = fn(x, *params)
    loss = tf.reduce_sum(y * dy)
  grads = tape.gradient(loss, [x] + params)
  return [y.numpy()] + [None if g is None else g.numpy() for g in grads]


def _check(ours, reference, x, params, dy, check_tflm=True):
  """Our primitive matches the reference in TF, and in TFLM if asked."""
  want = _grads(reference, x, params, dy)
  got = _grads(ours, x, params, dy)
  for w, g in zip(want, got):
    assert g is not None
    np.testing.assert_allclose(g, w, rtol=_TOL, atol=_TOL * np.abs(w).max())
  if not check_tflm:
    return

  class M(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec(x.shape, tf.float32)] + [
        tf.TensorSpec(p.shape, tf.float32) for p in params])
    def f(self, xx, *pp):
      with tf.GradientTape() as tape:
        tape.watch([xx] + list(pp))
        loss = tf.reduce_sum(ours(xx, *pp) * dy)
      return tape.gradient(loss, [xx] + list(pp))

  m = M()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [m.f.get_concrete_function()], m)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  model = converter.convert()
  check_builtin_only(model)
  outs = run_model(model, [[x] + list(params)]).outputs[0]
  # Output order of a converted list is not guaranteed: match by shape+value.
  for w in want[1:]:
    errs = [np.abs(o - w).max() for o in outs if o.shape == w.shape]
    assert errs and min(errs) <= _TOL * max(1.0, np.abs(w).max()), errs


CONV_CASES = [  # (in_hw, k, stride, padding, groups)
    (9, 3, 1, "SAME", 1), (9, 3, 2, "SAME", 1), (8, 3, 2, "SAME", 1),
    (9, 1, 1, "VALID", 1), (10, 5, 2, "SAME", 1), (9, 3, 2, "VALID", 1),
    (8, 3, 1, "SAME", 2), (8, 5, 2, "SAME", 2), (7, 2, 2, "VALID", 1),
]


@pytest.mark.parametrize("hw,k,s,padding,groups", CONV_CASES)
def test_conv2d_gradients(hw, k, s, padding, groups):
  rs = np.random.RandomState(0)
  cin, cout = 4, 6
  x = _rand(rs, [2, hw, hw, cin])
  kernel = _rand(rs, [k, k, cin // groups, cout], 0.3)
  bias = _rand(rs, [cout])
  fn = conv.make_conv2d(
      strides=s, padding=padding, groups=groups, in_shape=list(x.shape),
      kernel_shape=list(kernel.shape), need_input_grad=True,
      train_kernel=True, train_bias=True, has_bias=True)

  def ref(xx, kk, bb):
    # TF's CPU kernels cannot differentiate grouped convs: split per group.
    parts = [tf.nn.conv2d(xg, kg, s, padding) for xg, kg in zip(
        tf.split(xx, groups, 3), tf.split(kk, groups, 3))]
    return tf.nn.bias_add(tf.concat(parts, 3), bb)

  y = fn(tf.constant(x), tf.constant(kernel), tf.constant(bias))
  dy = _rand(rs, y.shape)
  # TFLM runs cost a conversion each: one grouped and one strided geometry.
  _check(fn, ref, x, [kernel, bias], dy,
         check_tflm=(hw, k, s, padding, groups) in {(8, 5, 2, "SAME", 2),
                                                    (9, 3, 2, "VALID", 1)})


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_frozen_pointwise_conv_lowers_to_fully_connected(padding):
  """1x1 convs with a frozen kernel: FULLY_CONNECTED forward and input
  gradient (no per-channel CONV_2D buffers), gradients as tf.nn.conv2d's."""
  from tflite_tl.lower.builtins import op_counts  # pylint: disable=import-outside-toplevel
  rs = np.random.RandomState(1)
  x = _rand(rs, [2, 5, 5, 8])
  kernel = _rand(rs, [1, 1, 8, 12], 0.3)
  bias = _rand(rs, [12])
  fn = conv.make_conv2d(
      strides=1, padding=padding, groups=1, in_shape=list(x.shape),
      kernel_shape=list(kernel.shape), need_input_grad=True,
      train_kernel=False, train_bias=True, has_bias=True)
  ours = lambda xx, bb: fn(xx, tf.constant(kernel), bb)  # noqa: E731
  ref = lambda xx, bb: tf.nn.bias_add(  # noqa: E731
      tf.nn.conv2d(xx, kernel, 1, padding), bb)
  dy = _rand(rs, [2, 5, 5, 12])
  _check(ours, ref, x, [bias], dy)

  # The output gradient is an input too: with a constant one the input
  # gradient would be constant-folded away.
  @tf.function(input_signature=[tf.TensorSpec(x.shape, tf.float32),
                                tf.TensorSpec(bias.shape, tf.float32),
                                tf.TensorSpec(dy.shape, tf.float32)])
  def step(xx, bb, dd):
    with tf.GradientTape() as tape:
      tape.watch([xx, bb])
      y = ours(xx, bb)
      loss = tf.reduce_sum(y * dd)
    return [y] + tape.gradient(loss, [xx, bb])

  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [step.get_concrete_function()])
  ops = op_counts(converter.convert())
  assert ops.get("FULLY_CONNECTED") == 2 and "CONV_2D" not in ops, ops


DW_CASES = [(9, 3, 1, "SAME"), (9, 3, 2, "SAME"), (8, 3, 2, "SAME"),
            (10, 5, 2, "SAME"), (9, 3, 2, "VALID"), (8, 5, 1, "SAME")]


@pytest.mark.parametrize("hw,k,s,padding", DW_CASES)
def test_depthwise_gradients(hw, k, s, padding):
  rs = np.random.RandomState(1)
  c = 5
  x = _rand(rs, [2, hw, hw, c])
  kernel = _rand(rs, [k, k, c, 1], 0.3)
  bias = _rand(rs, [c])
  fn = depthwise.make_depthwise_conv2d(
      strides=s, padding=padding, in_shape=list(x.shape),
      kernel_shape=list(kernel.shape), need_input_grad=True,
      train_kernel=True, train_bias=True, has_bias=True)
  ref = lambda xx, kk, bb: tf.nn.bias_add(tf.nn.depthwise_conv2d(  # noqa: E731
      xx, kk, [1, s, s, 1], padding), bb)
  dy = _rand(rs, fn(tf.constant(x), tf.constant(kernel),
                    tf.constant(bias)).shape)
  _check(fn, ref, x, [kernel, bias], dy,
         check_tflm=(hw, k, s, padding) == (9, 3, 2, "SAME"))


def test_dense_gradients():
  rs = np.random.RandomState(2)
  x, kernel, bias = _rand(rs, [3, 7]), _rand(rs, [7, 4]), _rand(rs, [4])
  fn = dense.make_dense(need_input_grad=True, train_kernel=True,
                        train_bias=True, has_bias=True)
  ref = lambda xx, kk, bb: tf.matmul(xx, kk) + bb  # noqa: E731
  _check(fn, ref, x, [kernel, bias], _rand(rs, [3, 4]))


@pytest.mark.parametrize("max_value", [None, 6.0])
def test_relu_mask_gradient(max_value):
  rs = np.random.RandomState(3)
  x = _rand(rs, [2, 4, 4, 3], 5.0)
  fn = activation.make_relu(max_value=max_value, need_input_grad=True)
  ref = tf.nn.relu if max_value is None else tf.nn.relu6
  _check(fn, ref, x, [], _rand(rs, x.shape), check_tflm=max_value is not None)


def test_relu_without_input_grad_keeps_no_mask():
  fn = activation.make_relu(max_value=6.0, need_input_grad=False)
  x = tf.constant(np.linspace(-3, 9, 12, dtype=np.float32))
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  assert tape.gradient(y, x) is None


def test_batchnorm_gradients():
  rs = np.random.RandomState(4)
  c = 6
  x = _rand(rs, [2, 3, 3, c])
  mean, var = _rand(rs, [c]), np.abs(_rand(rs, [c])) + 0.5
  gamma, beta = _rand(rs, [c]), _rand(rs, [c])
  fn = norm.make_batchnorm(moving_mean=mean, moving_variance=var,
                           epsilon=1e-3, need_input_grad=True,
                           train_gamma=True, train_beta=True)
  ref = lambda xx, g, b: tf.nn.batch_normalization(  # noqa: E731
      xx, mean, var, b, g, 1e-3)
  _check(fn, ref, x, [gamma, beta], _rand(rs, x.shape))


def _groupnorm_reference(groups, epsilon):
  def ref(x, gamma, beta):
    n, h, w, c = x.shape
    xg = tf.reshape(x, [n, h, w, groups, c // groups])
    mean, var = tf.nn.moments(xg, [1, 2, 4], keepdims=True)
    xh = tf.reshape((xg - mean) / tf.sqrt(var + epsilon), [n, h, w, c])
    return xh * gamma + beta
  return ref


def test_groupnorm_gradients():
  rs = np.random.RandomState(5)
  x = _rand(rs, [2, 4, 4, 8], 2.0) + 1.0
  gamma, beta = _rand(rs, [8]), _rand(rs, [8])
  fn = norm.make_groupnorm(in_shape=list(x.shape), groups=2, epsilon=1e-5,
                           need_input_grad=True, train_gamma=True,
                           train_beta=True)
  _check(fn, _groupnorm_reference(2, 1e-5), x, [gamma, beta],
         _rand(rs, x.shape))


def test_weight_standardization_gradient():
  from tflite_tl.layers.ws_conv import standardize_kernel  # pylint: disable=import-outside-toplevel
  rs = np.random.RandomState(6)
  kernel = _rand(rs, [3, 3, 4, 5])
  fn = norm.make_weight_standardization(epsilon=1e-5)
  _check(lambda k: fn(k), lambda k: standardize_kernel(k, 1e-5), kernel, [],
         _rand(rs, kernel.shape))


@pytest.mark.parametrize("hw,pool,padding", [(8, 2, "VALID"), (9, 2, "VALID"),
                                             (8, 2, "SAME")])
def test_average_pool_gradient(hw, pool, padding):
  rs = np.random.RandomState(7)
  x = _rand(rs, [2, hw, hw, 3])
  fn = pooling.make_average_pool(in_shape=list(x.shape), pool=(pool, pool),
                                 padding=padding, need_input_grad=True)
  ref = lambda xx: tf.nn.avg_pool2d(xx, pool, pool, padding)  # noqa: E731
  _check(fn, ref, x, [], _rand(rs, ref(x).shape), check_tflm=hw == 9)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pool_gradient(keepdims):
  rs = np.random.RandomState(8)
  x = _rand(rs, [2, 5, 5, 3])
  fn = pooling.make_global_average_pool(in_shape=list(x.shape),
                                        keepdims=keepdims,
                                        need_input_grad=True)
  ref = lambda xx: tf.reduce_mean(xx, [1, 2], keepdims=keepdims)  # noqa: E731
  _check(fn, ref, x, [], _rand(rs, ref(x).shape), check_tflm=keepdims)


@pytest.mark.parametrize("in_hw,out_hw", [((4, 4), (8, 8)), ((3, 5), (7, 9)),
                                          ((2, 2), (8, 8))])
def test_bilinear_resize_gradient(in_hw, out_hw):
  rs = np.random.RandomState(9)
  x = _rand(rs, [2, in_hw[0], in_hw[1], 3])
  fn = resize.make_bilinear_resize(in_shape=list(x.shape), out_hw=out_hw,
                                   need_input_grad=True)
  ref = lambda xx: tf.image.resize(xx, out_hw, "bilinear")  # noqa: E731
  _check(fn, ref, x, [], _rand(rs, [2, out_hw[0], out_hw[1], 3]),
         check_tflm=in_hw == (4, 4))


def test_pad_reshape_add_fanout_gradients():
  rs = np.random.RandomState(10)
  x = _rand(rs, [2, 4, 4, 3])
  pad = shape.make_pad(in_shape=list(x.shape), pads=((0, 1), (1, 0)),
                       need_input_grad=True)
  reshape = shape.make_reshape(in_shape=[2, 5, 5, 3], out_shape=[2, 75],
                               need_input_grad=True)
  fan = shape.make_fanout(num_outputs=2, need_input_grad=True)
  add = shape.make_add(num_inputs=2, need_input_grads=[True, True])

  def ours(xx):
    a, b = fan(xx)
    return reshape(pad(add(a, b * 2.0)))

  def ref(xx):
    return tf.reshape(tf.pad(xx * 3.0, [[0, 0], [0, 1], [1, 0], [0, 0]]),
                      [2, 75])

  _check(ours, ref, x, [], _rand(rs, [2, 75]))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy(smoothing):
  rs = np.random.RandomState(11)
  logits = _rand(rs, [4, 5], 2.0)
  labels = np.array([0, 4, 2, 2], np.int32)
  fn = make_softmax_cross_entropy(num_classes=5, batch_size=4,
                                  label_smoothing=smoothing)
  target = tf.one_hot(labels, 5) * (1 - smoothing) + smoothing / 5
  x = tf.constant(logits)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    ours = fn(x, tf.constant(labels))
    ref = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(target, x))
  np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)
  np.testing.assert_allclose(tape.gradient(ours, x).numpy(),
                             tape.gradient(ref, x).numpy(), atol=1e-6)


def test_bad_label_smoothing_is_rejected():
  with pytest.raises(ValueError, match="label_smoothing"):
    make_softmax_cross_entropy(num_classes=3, batch_size=1,
                               label_smoothing=1.0)
