"""The tinytrain and sparse_update methods and apply_selection."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import layers
from tflite_tl import rewrite
from tflite_tl import sparse
import sparse_fixtures


def _short(model):
  return sorted(w.name.split(":")[0] for w in model.trainable_weights)


def test_tinytrain_trains_exactly_the_selection():
  model = sparse_fixtures.mbconv_model()
  before = [w.numpy().copy() for w in model.weights]
  x, y = sparse_fixtures.support()
  out = rewrite.apply_method(model, "tinytrain", num_classes=3,
                             support=(x, y), memory_budget=20_000,
                             batch_size=2)
  sel = rewrite.selection_of(out)
  assert isinstance(sel, sparse.Selection) and sel.method == "tinytrain"
  expected = {"logits/kernel", "logits/bias"}
  for choice in sel.layers:
    expected |= {f"{choice.layer}/kernel_trained", f"{choice.layer}/bias"}
    layer = out.get_layer(choice.layer)
    assert isinstance(layer, layers.ChannelSparseMixin)
    assert tuple(layer.trained_channels) == choice.channels
  assert set(_short(out)) == expected
  # The user's model is untouched.
  for w, b in zip(model.weights, before):
    np.testing.assert_array_equal(w.numpy(), b)
  assert rewrite.method_needs_support("tinytrain")
  assert not rewrite.method_needs_support("sparse_update")


def test_with_the_head_kept_the_function_is_unchanged():
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  for name, options in (("tinytrain", dict(support=(x, y),
                                            memory_budget=40_000)),
                        ("sparse_update", {})):
    out = rewrite.apply_method(model, name, **options)
    np.testing.assert_allclose(out(x).numpy(), model(x).numpy(), atol=1e-5)


def test_a_stored_selection_gives_the_same_model():
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  prepared = rewrite.prepare_sparse_update(model, num_classes=4, seed=1)
  sel = sparse.select(prepared, x, y % 4, memory_budget=30_000,
                      criterion="l2", batch_size=2)
  stored = sparse.Selection.from_dict(sel.to_dict())
  a = rewrite.apply_method(model, "tinytrain", num_classes=4, seed=1,
                           selection=stored)
  b = rewrite.apply_method(model, "tinytrain", num_classes=4, seed=1,
                           support=(x, y % 4), memory_budget=30_000,
                           criterion="l2", batch_size=2)
  assert _short(a) == _short(b)
  for wa, wb in zip(a.weights, b.weights):
    np.testing.assert_array_equal(wa.numpy(), wb.numpy())


def test_sparse_update_trains_biases_and_expansion_channels():
  model = sparse_fixtures.mbconv_model()
  out = rewrite.apply_method(model, "sparse_update", num_classes=3,
                             bias_blocks=2, weight_blocks=1, weight_ratio=0.5)
  sel = rewrite.selection_of(out)
  assert sel.layer_names == ("b2_expand",)
  names = set(_short(out))
  assert {"b2_expand/kernel_trained", "b1_dw/bias", "b1_expand/bias",
          "logits/kernel"} <= names
  assert not any(n.startswith("stem") for n in names)
  assert len(out.get_layer("b2_expand").trained_channels) == 4


def test_output_axis_and_keras_round_trip(tmp_path):
  model = sparse_fixtures.mbconv_model()
  x, y = sparse_fixtures.support()
  out = rewrite.apply_method(model, "tinytrain", num_classes=3,
                             support=(x, y), memory_budget=40_000,
                             channel_axis="output", batch_size=2)
  convs = [l for l in out.layers if isinstance(l, layers.ChannelSparseConv2D)]
  assert convs and all(l.channel_axis == "output" for l in convs)
  path = str(tmp_path / "m.keras")
  out.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(loaded(x).numpy(), out(x).numpy())
  assert ([tuple(w.shape) for w in loaded.trainable_weights]
          == [tuple(w.shape) for w in out.trainable_weights])


def test_option_errors_tell_the_fix():
  model = sparse_fixtures.mbconv_model()
  with pytest.raises(ValueError, match="support="):
    rewrite.apply_method(model, "tinytrain", num_classes=3)
  with pytest.raises(ValueError, match="does not take"):
    rewrite.apply_method(model, "tinytrain", norm="group")
  sel = sparse.sparse_update_scheme(rewrite.prepare_sparse_update(model, 3))
  with pytest.raises(ValueError, match="ready selection"):
    rewrite.apply_method(model, "sparse_update", num_classes=3,
                         selection=sel, weight_ratio=0.5)
  # A selection made for another head does not apply.
  with pytest.raises(ValueError, match="channels"):
    bad = sparse.Selection.from_dict(dict(
        sel.to_dict(), layers=[dict(sel.layers[0].to_dict(),
                                    total_channels=99)]))
    rewrite.apply_selection(rewrite.prepare_sparse_update(model, 3), bad)
