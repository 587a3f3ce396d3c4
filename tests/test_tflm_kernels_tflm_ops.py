"""TL_* op descriptions (tflite_tl.kernels.tflm_ops) against the C++ adapters."""
import re

import pytest
from flatbuffers import flexbuffers

from tflite_tl.kernels import tflm_ops

_TFLM_DIR = tflm_ops.KERNELS_DIR / "tflm"


def test_options_round_trip_sorted():
  raw = tflm_ops.custom_options("TL_CONV_WGRAD_SPARSE", stride_w=2, stride_h=1, padding=1)
  assert flexbuffers.Loads(raw) == {"padding": 1, "stride_h": 1, "stride_w": 2}
  # Element order (what FlexbufferWrapper indexes) is alphabetical.
  assert list(flexbuffers.GetRoot(raw).AsMap.Keys.Value) == ["padding", "stride_h",
                                                              "stride_w"]
  sgd = flexbuffers.Loads(tflm_ops.custom_options("TL_SGD_UPDATE", momentum=0.9,
                                                  learning_rate=0.05))
  assert sgd == pytest.approx({"learning_rate": 0.05, "momentum": 0.9})
  assert tflm_ops.custom_options("TL_BIAS_GRAD") == b""


def test_options_are_deterministic():
  a = tflm_ops.custom_options("TL_RELU_MASK", relu6=True)
  assert a == tflm_ops.custom_options("TL_RELU_MASK", relu6=True)


@pytest.mark.parametrize("op,options,match", [
    ("TL_NOPE", {}, "unknown TFLM training op"),
    ("TL_SGD_UPDATE", {"learning_rate": 0.1}, r"takes options \['learning_rate', 'momentum'\]"),
    ("TL_RELU_MASK", {"relu6": 1}, "must be a bool"),
    ("TL_DEPTHWISE_WGRAD", {"padding": 2, "stride_h": 1, "stride_w": 1}, "0 \\(VALID\\)"),
    ("TL_CONV_INPUT_GRAD", {"padding": 1, "stride_h": 0, "stride_w": 1}, "must be >= 1"),
    ("TL_CONV_UPDATE", {"channel_axis": 2, "learning_rate": 0.1, "padding": 1, "qas": True,
                        "stride_h": 1, "stride_w": 1}, "'channel_axis' is 0"),
    ("TL_DEPTHWISE_UPDATE", {"learning_rate": 0.1, "padding": 1, "qas": 1, "stride_h": 1,
                             "stride_w": 1}, "must be a bool"),
    ("TL_SOFTMAX_XENT", {"label_smoothing": 1.0}, r"must be in \[0, 1\)"),
    ("TL_RESIZE_BILINEAR_GRAD", {"align_corners": True, "half_pixel_centers": True},
     "cannot both be true"),
    ("TL_AVGPOOL_GRAD", {"filter_h": 0, "filter_w": 2, "padding": 0, "stride_h": 2,
                         "stride_w": 2}, "'filter_h' must be >= 1"),
    ("TL_GROUPNORM", {"epsilon": 1e-3, "groups": 0}, "'groups' must be >= 1"),
])
def test_bad_options_are_explained(op, options, match):
  with pytest.raises(ValueError, match=match):
    tflm_ops.custom_options(op, **options)


def test_every_op_is_registered_by_its_source_and_add_training_ops():
  header = (_TFLM_DIR / "training_ops.h").read_text()
  added = re.findall(r'\{"(TL_\w+)", Register_\1\}', header)
  assert sorted(added) == sorted(tflm_ops.OPS)
  assert f"kNumTrainingOps = {len(tflm_ops.OPS)};" in header
  for spec in tflm_ops.OPS.values():
    source = (_TFLM_DIR / spec.source).read_text()
    assert f"TFLMRegistration* Register_{spec.name}()" in source, spec.name


def test_option_indices_in_cpp_are_alphabetical():
  # Every `k...Index = i;  // "key"` in the adapters must be the key's position
  # in the sorted option names of the ops of that file.
  by_file = {}
  for spec in tflm_ops.OPS.values():
    by_file.setdefault(spec.source, []).append(spec)
  by_file["op_utils.cc"] = [s for s in tflm_ops.OPS.values()
                            if set(s.options) == {"padding", "stride_h", "stride_w"}]
  checked = 0
  for name, specs in by_file.items():
    text = (_TFLM_DIR / name).read_text()
    for index, key in re.findall(r'k\w+Index = (\d+);\s*// "(\w+)"', text):
      orders = [sorted(s.options) for s in specs if key in s.options]
      assert orders, f"{name}: option {key!r} is not in the spec of its ops"
      assert all(o.index(key) == int(index) for o in orders), (name, key)
      checked += 1
  # op_utils: padding, stride_h, stride_w; learning_rate x2, momentum, relu6;
  # conv_update: 6; depthwise_update: 5; softmax_xent 1; avgpool_grad 5;
  # resize_bilinear_grad 2; group_norm 3; batch_norm_grad 1; weight_standardize 1;
  # depthwise_conv 4; inverted_residual 12; conv 6; ws_conv_update 5;
  # depthwise_chain_update 7; inverted_residual_update 6.
  assert checked == 71


def test_firmware_sources_exist_and_cover_every_op():
  files = tflm_ops.firmware_sources()
  names = {p.name for p in files}
  assert all(p.exists() for p in files)
  assert {s.source for s in tflm_ops.OPS.values()} <= names
  assert {"training_ops.h", "op_utils.h", "op_utils.cc", "conv_geometry.h"} <= names
