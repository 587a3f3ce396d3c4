"""Fisher channel potentials against a direct GradientTape computation."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl import sparse
import sparse_fixtures


def _reference(model, images, labels, tensor_of):
  """Delta_c from a multi-output model exposing the activation."""
  probe = keras.Model(model.inputs, [tensor_of(model), model.outputs[0]])
  with tf.GradientTape() as tape:
    act, logits = probe(images)
    loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))
  grad = tape.gradient(loss, act).numpy().astype(np.float64)
  act = act.numpy().astype(np.float64)
  per_sample = (act * grad).reshape(len(images), -1, act.shape[-1]).sum(1)
  return np.square(per_sample).sum(0) / (2 * len(images))


def test_input_and_output_potentials_match_the_definition():
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  got = sparse.channel_potentials(
      model, x, y, {"b1_expand": "input", "b2_dw": "channels",
                    "b1_project": "output"}, chunk_size=5)
  want_expand = _reference(model, x, y,
                           lambda m: m.get_layer("stem_relu").output)
  want_dw = _reference(model, x, y,
                       lambda m: m.get_layer("b2_expand_relu").output)
  want_project = _reference(model, x, y,
                            lambda m: m.get_layer("b1_project").output)
  np.testing.assert_allclose(got["b1_expand"], want_expand, rtol=1e-5)
  np.testing.assert_allclose(got["b2_dw"], want_dw, rtol=1e-5)
  np.testing.assert_allclose(got["b1_project"], want_project, rtol=1e-5)
  assert got["b1_expand"].shape == (6,) and got["b1_project"].shape == (8,)
  assert all(np.all(v >= 0) for v in got.values())


def test_input_potential_counts_only_the_layers_own_path():
  # b1_project's output feeds b2_expand and the residual Add; b2_expand's
  # input potential must use the gradient through b2_expand only.
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  got = sparse.channel_potentials(model, x, y, {"b2_expand": "input"})
  total = _reference(model, x, y, lambda m: m.get_layer("b1_project").output)
  assert not np.allclose(got["b2_expand"], total)
  # Dropping the shortcut makes the two gradients equal.
  inp = model.inputs[0]
  h = model.get_layer("b1_project").output
  h = model.get_layer("b2_expand")(h)
  for name in ("b2_expand_relu", "b2_dw", "b2_dw_relu", "b2_project", "pool",
               "logits"):
    h = model.get_layer(name)(h)
  chain = keras.Model(inp, h)
  chained = sparse.channel_potentials(chain, x, y, {"b2_expand": "input"})
  np.testing.assert_allclose(
      chained["b2_expand"],
      _reference(chain, x, y, lambda m: m.get_layer("b1_project").output),
      rtol=1e-5)


def test_chunking_does_not_change_the_result():
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support(n=10)
  a = sparse.channel_potentials(model, x, y, {"b1_dw": "channels"},
                                chunk_size=3)
  b = sparse.channel_potentials(model, x, y, {"b1_dw": "channels"},
                                chunk_size=32)
  np.testing.assert_allclose(a["b1_dw"], b["b1_dw"], rtol=1e-6)
  assert sparse.layer_potentials(a)["b1_dw"] == pytest.approx(
      float(a["b1_dw"].sum()))


@pytest.mark.parametrize("labels,axes,message", [
    (np.array([0, 5]), {"stem": "input"}, "classes"),
    (np.array([0, 1]), {"nope": "input"}, "no layers"),
    (np.array([0, 1]), {"stem": "rows"}, "axes"),
])
def test_bad_inputs_are_named(labels, axes, message):
  model = sparse_fixtures.mbconv_model()
  x, _ = sparse_fixtures.support(n=2)
  with pytest.raises(ValueError, match=message):
    sparse.channel_potentials(model, x, labels, axes)
