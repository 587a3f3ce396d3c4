"""The static sparse-update scheme (MIT's sparse update)."""
import pytest

from tflite_tl import sparse
import sparse_fixtures


def test_default_scheme_biases_last_half_kernels_of_expansions():
  model = sparse_fixtures.mbconv_model()
  sel = sparse.sparse_update_scheme(model, batch_size=2)
  assert sel.method == "sparse_update" and sel.criterion == "l2"
  # Two blocks: biases of the last one (b2_*), the kernel of its expansion.
  assert sel.bias_layers == ("b2_dw", "b2_expand", "b2_project")
  assert sel.layer_names == ("b2_expand",)
  assert len(sel.layers[0].channels) == 2  # 1/4 of 8 input channels
  norms = sparse.kernel_slice_norms(
      model.get_layer("b2_expand").kernel.numpy(), "input")
  assert set(sel.layers[0].channels) == set(
      (-norms).argsort(kind="stable")[:2].tolist())


def test_explicit_blocks_ratios_and_random():
  model = sparse_fixtures.mbconv_model()
  sel = sparse.sparse_update_scheme(model, bias_blocks=2, weight_blocks=2,
                                    weight_ratio=(0.5, 1.0), batch_size=2)
  assert sel.layer_names == ("b1_expand", "b2_expand")
  assert [len(c.channels) for c in sel.layers] == [3, 8]
  assert "b1_dw" in sel.bias_layers and "stem" not in sel.bias_layers
  r1 = sparse.sparse_update_scheme(model, criterion="random", seed=1)
  r2 = sparse.sparse_update_scheme(model, criterion="random", seed=2)
  assert r1.layers[0].channels != r2.layers[0].channels or len(
      r1.layers[0].channels) == 8


@pytest.mark.parametrize("kwargs,message", [
    (dict(bias_blocks=3), "bias_blocks"),
    (dict(weight_blocks=2), "weight_blocks"),
    (dict(weight_ratio=1.5), "weight_ratio"),
    (dict(criterion="fisher"), "criterion"),
])
def test_bad_options_are_named(kwargs, message):
  with pytest.raises(ValueError, match=message):
    sparse.sparse_update_scheme(sparse_fixtures.mbconv_model(), **kwargs)
