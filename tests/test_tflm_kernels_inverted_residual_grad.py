"""TL_INVERTED_RESIDUAL_INPUT_GRAD's TF adapter against its goldens and,
bit for bit, against the three TF adapters of the chain it replaces."""
import pathlib

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.kernels import goldens
from tflite_tl.kernels import ops

_TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "tflm_kernels" / "testdata"
_CASES = goldens.read_cases(_TESTDATA / "inverted_residual_input_grad.golden")


def _fused(case, **overrides):
  t, p = case.tensors, case.params
  expand = ((t["expand_filter"], t["expand_scales"]) if p["has_expand"] else None)
  kwargs = dict(input_size=t["expected_grad_input"].shape[1:3],
                strides=(p["stride_h"], p["stride_w"]),
                padding="SAME" if p["padding"] else "VALID",
                grad_output_mask=t.get("out_mask"), depthwise_mask=t.get("dw_mask"),
                expand_mask=t.get("expand_mask"))
  kwargs.update(overrides)
  return ops.inverted_residual_input_grad(
      t["grad_output"], (t["project_filter"], t["project_scales"]),
      (t["depthwise_filter"], t["depthwise_scales"]), expand, **kwargs)


@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])
def test_inverted_residual_input_grad_golden(case):
  want = case.tensors["expected_grad_input"]
  got = np.asarray(_fused(case))
  assert got.shape == want.shape
  atol = 1e-5 * (1.0 + np.abs(want).max())
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])
def test_inverted_residual_input_grad_is_the_chain_bit_for_bit(case):
  t, p = case.tensors, case.params
  conv = dict(strides=(p["stride_h"], p["stride_w"]),
              padding="SAME" if p["padding"] else "VALID")
  dz = ops.conv_input_grad(t["grad_output"], t["project_filter"], t["project_scales"],
                           t["grad_output"].shape[1:3], mask=t.get("out_mask"))
  want = ops.depthwise_input_grad(dz, t["depthwise_filter"], t["depthwise_scales"],
                                  t["expected_grad_input"].shape[1:3], **conv,
                                  mask=t.get("dw_mask"))
  if p["has_expand"]:
    want = ops.conv_input_grad(want, t["expand_filter"], t["expand_scales"],
                               t["expected_grad_input"].shape[1:3],
                               mask=t.get("expand_mask"))
  np.testing.assert_array_equal(np.asarray(_fused(case)).view(np.uint32),
                                np.asarray(want).view(np.uint32))


def test_inverted_residual_input_grad_rejects_a_short_mask():
  case = _CASES[0]
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"depthwise_mask must be \[30\] bytes"):
    _fused(case, depthwise_mask=np.zeros(29, np.uint8))
