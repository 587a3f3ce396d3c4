"""fisher.tflite: the selection pass as a builtin-only graph, against the
host's GradientTape Fisher potentials, in TF and in the TFLM interpreter."""
import numpy as np
import pytest

from tflite_tl import tflm
from tflite_tl.flatbuffer import reader
from tflite_tl.lower import fisher_graph
from tflite_tl.lower.fake_quant import fake_quantized_kernels
from tflite_tl.sparse import fisher
import sparse_fixtures

# Every kind of probe: an output axis, input axes on a layer after a ReLU,
# a strided depthwise, a layer feeding a residual Add, the last conv.
AXES = {"stem": "output", "b1_expand": "input", "b1_dw": "channels",
        "b2_expand": "input", "b2_project": "input"}


@pytest.fixture(scope="module")
def model():
  return sparse_fixtures.mbconv_model()


@pytest.fixture(scope="module")
def support():
  return sparse_fixtures.support(12)


def _tflm_potentials(graph, images, labels):
  b = graph.batch_size
  steps = [graph.inputs(images[i:i + b], labels[i:i + b])
           for i in range(0, len(images), b)]
  run = tflm.run_model(graph.tflite, steps, backend="wheel")
  sums = {n: sum(out[k].astype(np.float64) for out in run.outputs)
          for k, n in enumerate(graph.layers)}
  return graph.potentials(sums, len(images))


def _assert_close(got, want, rtol):
  for name in want:
    scale = np.max(np.abs(want[name]))
    assert scale > 0, name
    err = np.max(np.abs(got[name] - want[name])) / scale
    assert err < rtol, (name, err)


def test_tf_reference_matches_the_host_potentials(model, support):
  images, labels = support
  sums = fisher_graph.run_reference(model, AXES, images, labels, 4)
  got = {n: s / (2 * len(images)) for n, s in sums.items()}
  _assert_close(got, fisher.channel_potentials(model, images, labels, AXES),
                1e-6)


def test_tflm_matches_the_host_potentials(model, support):
  images, labels = support
  graph = fisher_graph.lower_fisher(model, AXES, batch_size=4)
  assert sorted(graph.layers) == sorted(AXES)
  assert [o.shape for o in reader.outputs(graph.tflite)] == [
      (int(model.get_layer(n).input.shape[-1]) if AXES[n] != "output"
       else int(model.get_layer(n).output.shape[-1]),)
      for n in graph.layers]
  got = _tflm_potentials(graph, images, labels)
  _assert_close(got, fisher.channel_potentials(model, images, labels, AXES),
                1e-5)


def test_the_ranking_on_tflm_is_the_hosts(model, support):
  images, labels = support
  graph = fisher_graph.lower_fisher(model, AXES, batch_size=6)
  got = _tflm_potentials(graph, images, labels)
  want = fisher.channel_potentials(model, images, labels, AXES)
  for name in AXES:
    assert list(np.argsort(-got[name], kind="stable")[:3]) == list(
        np.argsort(-want[name], kind="stable")[:3]), name


def test_int8_stores_frozen_kernels_as_int8_and_scores_their_values(
    support):
  images, labels = support
  model = sparse_fixtures.mbconv_model()
  for layer in model.layers:
    layer.trainable = layer.name == "logits"
  floats = fisher_graph.lower_fisher(model, AXES, batch_size=4)
  int8 = fisher_graph.lower_fisher(model, AXES, batch_size=4,
                                   precision="int8")
  assert len(int8.tflite) < len(floats.tflite)
  assert "DEQUANTIZE" in reader.op_counts(int8.tflite)
  with fake_quantized_kernels(model):
    want = fisher.channel_potentials(model, images, labels, AXES)
  _assert_close(_tflm_potentials(int8, images, labels), want, 1e-5)


@pytest.mark.parametrize("axes, message", [
    ({"stem": "rows"}, "axes must be"),
    ({"nope": "input"}, "has no layers"),
    ({}, "at least one"),
])
def test_bad_axes_are_named(model, axes, message):
  with pytest.raises(ValueError, match=message):
    fisher_graph.lower_fisher(model, axes, batch_size=2)


def test_bad_batch_and_precision_are_named(model):
  with pytest.raises(ValueError, match="batch_size"):
    fisher_graph.lower_fisher(model, AXES, batch_size=0)
  with pytest.raises(ValueError, match="precision"):
    fisher_graph.lower_fisher(model, AXES, batch_size=2, precision="fp16")
