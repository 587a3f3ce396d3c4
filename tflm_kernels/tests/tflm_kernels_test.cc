// Runs every TL_* op through TFLite Micro (its KernelRunner: Init, Prepare and
// Eval exactly as the interpreter calls them) on the same golden files as the
// reference test (kernels_test.cc) and the TF adapters: one golden, three
// runtimes. Also checks that Prepare rejects bad shapes, types and options
// with a MicroPrintf naming the problem (the printed text is captured).
//
// Table-driven: a kernel needs one entry in kGoldenTests (golden file, op
// name, and a few lines that map a golden case to tensors) and, for its
// Prepare checks, entries in kRejectTests. The op is found by name in a
// resolver filled by AddTrainingOps, so registration is tested too.
//
// Built against TFLM (libtensorflow-microlite.a, libtl_training_ops.a) with
// TFLM's flags by tflite_tl/tflm/native_build.py; run by
// tests/test_tflm_kernels_tflm.py.
// Usage: tflm_kernels_test [testdata_dir]
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "flatbuffers/flexbuffers.h"
#include "tensorflow/lite/micro/kernels/kernel_runner.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/test_helpers.h"
#include "tflm_kernels/tests/golden_reader.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace {

using testing::GoldenCase;
using testing::GoldenTensor;

int g_failures = 0;
int g_checks = 0;

void Fail(const std::string& what) {
  ++g_failures;
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
}

TfLiteType TypeOf(const std::string& dtype) {
  if (dtype == "f32") return kTfLiteFloat32;
  if (dtype == "i32") return kTfLiteInt32;
  if (dtype == "i8") return kTfLiteInt8;
  if (dtype == "u8") return kTfLiteUInt8;
  return kTfLiteNoType;
}

// Custom options as the lowering writes them: a flexbuffer map.
class Options {
 public:
  Options& Int(const char* key, int64_t v) {
    ints_.push_back({key, v});
    return *this;
  }
  Options& Float(const char* key, double v) {
    floats_.push_back({key, v});
    return *this;
  }
  Options& Bool(const char* key, bool v) {
    bools_.push_back({key, v});
    return *this;
  }
  std::vector<uint8_t> Serialize() const {
    if (ints_.empty() && floats_.empty() && bools_.empty()) return {};
    flexbuffers::Builder fbb;
    const size_t start = fbb.StartMap();
    for (const auto& kv : ints_) fbb.Int(kv.first, kv.second);
    for (const auto& kv : floats_) fbb.Double(kv.first, kv.second);
    for (const auto& kv : bools_) fbb.Bool(kv.first, kv.second);
    fbb.EndMap(start);
    fbb.Finish();
    return fbb.GetBuffer();
  }

 private:
  std::vector<std::pair<const char*, int64_t>> ints_;
  std::vector<std::pair<const char*, double>> floats_;
  std::vector<std::pair<const char*, bool>> bools_;
};

// One op invocation built from a golden case: its tensors, options, the
// inputs fed before each invoke and the tensors checked after it.
class OpCase {
 public:
  explicit OpCase(const GoldenCase& golden) : golden_(golden) {}

  // An input holding a golden tensor's values (converted to `type`, default
  // the golden's own type). Returns the tensor index.
  int Input(const std::string& name, TfLiteType type = kTfLiteNoType) {
    const GoldenTensor& t = golden_.tensor(name);
    const int index = Add(t.shape, type == kTfLiteNoType ? TypeOf(t.dtype)
                                                          : type);
    Fill(index, t);
    inputs_.push_back(index);
    names_[name] = index;
    return index;
  }
  // An absent optional input (tensor index -1, kTfLiteOptionalTensor).
  void Absent() { inputs_.push_back(-1); }
  // A tensor already added, as another input of the op (e.g. a trained
  // filter the op also reads for the input gradient).
  void Reuse(int index) { inputs_.push_back(index); }
  // The golden tensor `name` as an optional input, absent if the case has
  // none. Returns its index or -1.
  int Optional(const std::string& name) {
    if (golden_.has_tensor(name)) return Input(name);
    Absent();
    return -1;
  }
  // An optional parameter input: a variable tensor updated in place and
  // checked against expected_<name> when the case has that twin; otherwise
  // a constant of the model (e.g. a frozen gamma); absent without a tensor.
  int Parameter(const std::string& name) {
    if (!golden_.has_tensor(name)) {
      Absent();
      return -1;
    }
    if (golden_.has_tensor("expected_" + name)) {
      const int index = Variable(name);
      Check(index, "expected_" + name, TypeOf(golden_.tensor(name).dtype) !=
                                           kTfLiteFloat32);
      return index;
    }
    const int index = Input(name);
    Constant(index);
    return index;
  }
  // The tensor a builder added for golden tensor `name` (an input, or the
  // output checked against it), for rejection tests.
  int Index(const std::string& name) const {
    auto it = names_.find(name);
    if (it == names_.end()) {
      throw std::runtime_error(golden_.name + ": the case built no tensor " +
                               name);
    }
    return it->second;
  }
  // A variable input (is_variable), updated in place by the op.
  int Variable(const std::string& name) {
    const int index = Input(name);
    tensors_[index].is_variable = true;
    return index;
  }
  // A zero-filled variable input of a golden tensor's shape (e.g. velocity).
  int ZeroVariable(const std::string& shape_of) {
    const int index = Add(golden_.tensor(shape_of).shape, kTfLiteFloat32);
    tensors_[index].is_variable = true;
    inputs_.push_back(index);
    return index;
  }
  // An output shaped like the golden `expected`, checked against it.
  int Output(const std::string& expected, bool exact = false) {
    const GoldenTensor& t = golden_.tensor(expected);
    const int index = Add(t.shape, TypeOf(t.dtype));
    std::memset(tensors_[index].data.raw, 0x5A, tensors_[index].bytes);
    outputs_.push_back(index);
    names_[expected] = index;
    Check(index, expected, exact);
    return index;
  }
  // After the current step's invoke, tensor `index` must equal `expected`.
  void Check(int index, const std::string& expected, bool exact = false) {
    Current().checks.push_back({index, expected, exact});
  }
  // Starts another invoke; `Feed` replaces an input's values before it.
  void NextStep() { steps_.push_back({}); }
  void Feed(int index, const std::string& name) {
    Current().feeds.push_back({index, name});
  }

  // Per-tensor quantization (a saved int8 activation).
  void Quantize(int index, float scale, int zero_point) {
    tensors_[index].params.scale = scale;
    tensors_[index].params.zero_point = zero_point;
    auto& q = quant_.emplace_back();
    q.scales = {1, scale};
    q.zero_points = {1, zero_point};
    SetAffine(index, q, 0);
  }
  // Per-channel symmetric quantization along `axis` with golden `scales`.
  void QuantizePerChannel(int index, const std::string& scales, int axis) {
    QuantizePerChannel(index, golden_.tensor(scales).AsFloat(), axis);
  }
  void QuantizePerChannel(int index, const std::vector<float>& values,
                          int axis) {
    auto& q = quant_.emplace_back();
    q.scales.push_back(static_cast<float>(values.size()));
    q.scales.insert(q.scales.end(), values.begin(), values.end());
    q.zero_points.assign(values.size() + 1, 0);
    q.zero_points[0] = static_cast<int>(values.size());
    SetAffine(index, q, axis);
  }
  // Marks an input as a constant of the model (read-only flatbuffer data).
  void Constant(int index) { tensors_[index].allocation_type = kTfLiteMmapRo; }

  // Conv options from the golden params padding, stride_h, stride_w.
  Options ConvOptions() const {
    Options o;
    o.Int("padding", static_cast<int64_t>(golden_.param("padding")))
        .Int("stride_h", static_cast<int64_t>(golden_.param("stride_h")))
        .Int("stride_w", static_cast<int64_t>(golden_.param("stride_w")));
    return o;
  }

  const GoldenCase& golden() const { return golden_; }
  TfLiteTensor& tensor(int index) { return tensors_[index]; }
  // Replaces a tensor's shape (for rejection tests).
  void Reshape(int index, const std::vector<int32_t>& shape) {
    auto& dims = dims_.emplace_back();
    dims.push_back(static_cast<int>(shape.size()));
    for (int32_t d : shape) dims.push_back(d);
    tensors_[index].dims = tflite::testing::IntArrayFromInts(dims.data());
  }

  Options options;

  // Runs the op: Init+Prepare with the options, then one invoke per step.
  // Returns Prepare's status; check failures are reported.
  TfLiteStatus Run(const TFLMRegistration& registration,
                   const std::string& what, bool expect_prepare_ok = true) {
    auto& in = dims_.emplace_back();
    in.push_back(static_cast<int>(inputs_.size()));
    in.insert(in.end(), inputs_.begin(), inputs_.end());
    auto& out = dims_.emplace_back();
    out.push_back(static_cast<int>(outputs_.size()));
    out.insert(out.end(), outputs_.begin(), outputs_.end());
    std::vector<TfLiteTensor> tensors(tensors_.begin(), tensors_.end());
    tflite::micro::KernelRunner runner(
        registration, tensors.data(), static_cast<int>(tensors.size()),
        tflite::testing::IntArrayFromInts(in.data()),
        tflite::testing::IntArrayFromInts(out.data()), nullptr);
    const std::vector<uint8_t> buffer = options.Serialize();
    const TfLiteStatus prepared = runner.InitAndPrepare(
        reinterpret_cast<const char*>(buffer.data()), buffer.size());
    if (prepared != kTfLiteOk || !expect_prepare_ok) {
      if (prepared != kTfLiteOk && expect_prepare_ok) {
        Fail(what + ": Prepare failed");
      }
      return prepared;
    }
    if (!runner.ValidateTempBufferDeallocated()) {
      Fail(what + ": Prepare left temporary tensors allocated");
    }
    for (size_t s = 0; s < steps_.size(); ++s) {
      for (const Feed_& f : steps_[s].feeds) Fill(f.index, golden_.tensor(f.name));
      if (runner.Invoke() != kTfLiteOk) {
        Fail(what + ": Invoke failed at step " + std::to_string(s));
        return kTfLiteError;
      }
      for (const Check_& c : steps_[s].checks) {
        Compare(tensors[c.index], golden_.tensor(c.expected), c.exact,
                what + " step " + std::to_string(s) + " " + c.expected);
      }
    }
    return kTfLiteOk;
  }

 private:
  struct Feed_ {
    int index;
    std::string name;
  };
  struct Check_ {
    int index;
    std::string expected;
    bool exact;
  };
  struct Step {
    std::vector<Feed_> feeds;
    std::vector<Check_> checks;
  };
  struct Quant {
    std::vector<float> scales;  // [n, values...] as FloatArrayFromFloats
    std::vector<int> zero_points;
    TfLiteAffineQuantization affine;
  };

  Step& Current() {
    if (steps_.empty()) steps_.push_back({});
    return steps_.back();
  }

  int Add(const std::vector<int32_t>& shape, TfLiteType type) {
    auto& dims = dims_.emplace_back();
    dims.push_back(static_cast<int>(shape.size()));
    size_t count = 1;
    for (int32_t d : shape) {
      dims.push_back(d);
      count *= static_cast<size_t>(d);
    }
    size_t type_size = 0;
    tflite::TfLiteTypeSizeOf(type, &type_size);
    auto& data = data_.emplace_back((count * type_size + 3) / 4 + 1);
    TfLiteTensor t = {};
    t.type = type;
    t.dims = tflite::testing::IntArrayFromInts(dims.data());
    t.data.raw = reinterpret_cast<char*>(data.data());
    t.bytes = count * type_size;
    t.allocation_type = kTfLiteArenaRw;
    t.quantization = {kTfLiteNoQuantization, nullptr};
    tensors_.push_back(t);
    return static_cast<int>(tensors_.size()) - 1;
  }

  void SetAffine(int index, Quant& q, int axis) {
    q.affine.scale = tflite::testing::FloatArrayFromFloats(q.scales.data());
    q.affine.zero_point = tflite::testing::IntArrayFromInts(q.zero_points.data());
    q.affine.quantized_dimension = axis;
    tensors_[index].quantization = {kTfLiteAffineQuantization, &q.affine};
  }

  // Copies golden values into a tensor (in both the OpCase and a running
  // KernelRunner's copy, which shares the data buffer).
  void Fill(int index, const GoldenTensor& t) {
    TfLiteTensor& dst = tensors_[index];
    const size_t n = t.values.size();
    for (size_t i = 0; i < n; ++i) {
      const double v = t.values[i];
      switch (dst.type) {
        case kTfLiteFloat32: dst.data.f[i] = static_cast<float>(v); break;
        case kTfLiteInt32: dst.data.i32[i] = static_cast<int32_t>(v); break;
        case kTfLiteInt16: dst.data.i16[i] = static_cast<int16_t>(v); break;
        case kTfLiteInt8: dst.data.int8[i] = static_cast<int8_t>(v); break;
        case kTfLiteUInt8: dst.data.uint8[i] = static_cast<uint8_t>(v); break;
        default: break;
      }
    }
  }

  static double ValueAt(const TfLiteTensor& t, size_t i) {
    switch (t.type) {
      case kTfLiteFloat32: return static_cast<double>(t.data.f[i]);
      case kTfLiteInt32: return static_cast<double>(t.data.i32[i]);
      case kTfLiteInt8: return static_cast<double>(t.data.int8[i]);
      case kTfLiteUInt8: return static_cast<double>(t.data.uint8[i]);
      default: return std::nan("");
    }
  }

  // Floats within tolerance, integers exactly, a non-finite float by kind
  // (NaN, +inf or -inf).
  void Compare(const TfLiteTensor& got, const GoldenTensor& want, bool exact,
               const std::string& what) {
    ++g_checks;
    const size_t n = want.values.size();
    size_t type_size = 0;
    tflite::TfLiteTypeSizeOf(got.type, &type_size);
    if (type_size == 0 || got.bytes / type_size != n) {
      Fail(what + ": size mismatch");
      return;
    }
    exact = exact || got.type != kTfLiteFloat32;
    double max_abs = 0.0;
    for (double v : want.values) {
      if (std::isfinite(v)) max_abs = std::fmax(max_abs, std::fabs(v));
    }
    // Float32 sums against float64 truth, as in kernels_test.cc.
    const double atol = 1e-5 * (1.0 + max_abs);
    for (size_t i = 0; i < n; ++i) {
      const double g = ValueAt(got, i);
      const double w = want.values[i];
      bool ok;
      if (!std::isfinite(w)) {
        ok = std::isnan(w) ? std::isnan(g) : g == w;
      } else {
        const double err = std::fabs(g - w);
        ok = exact ? err == 0.0 : err <= atol + 1e-5 * std::fabs(w);
      }
      if (!ok) {
        Fail(what + ": element " + std::to_string(i) + " got " +
             std::to_string(g) + " want " + std::to_string(w));
        return;
      }
    }
  }

  const GoldenCase& golden_;
  std::deque<TfLiteTensor> tensors_;
  std::deque<std::vector<int>> dims_;
  std::deque<Quant> quant_;
  std::deque<std::vector<float>> data_;  // tensor storage, float-aligned
  std::vector<int> inputs_;
  std::vector<int> outputs_;
  std::map<std::string, int> names_;
  std::vector<Step> steps_;
};

// ---------------------------------------------------------------------------
// The table: golden file, op, and how a golden case becomes tensors.

using Builder = std::function<void(OpCase&)>;

struct GoldenTest {
  const char* golden;  // file in testdata/
  const char* op;      // registered by AddTrainingOps
  const char* variant;  // names the form tested (in-place, functional, ...)
  Builder build;
};

void ConvWeightGrad(OpCase& c) {
  const int input = c.Input("input");
  if (c.golden().tensor("input").dtype == "i8") {
    c.Quantize(input, static_cast<float>(c.golden().param("input_scale")),
               static_cast<int>(c.golden().param("input_zero_point")));
  }
  c.Input("grad_output");
  c.Constant(c.Input("channels"));
  c.Output("expected_grad_filter");
  c.options = c.ConvOptions();
}

void DepthwiseWeightGrad(OpCase& c) {
  const int input = c.Input("input");
  if (c.golden().tensor("input").dtype == "i8") {
    c.Quantize(input, static_cast<float>(c.golden().param("input_scale")),
               static_cast<int>(c.golden().param("input_zero_point")));
  }
  c.Input("grad_output");
  c.Output("expected_grad_filter");
  c.options = c.ConvOptions();
}

// Quantizes an int8 saved activation `name` (if the case has it as int8)
// with the golden params input_scale / input_zero_point.
void QuantizeInput(OpCase& c, int index, const std::string& name) {
  if (index >= 0 && c.golden().tensor(name).dtype == "i8") {
    c.Quantize(index, static_cast<float>(c.golden().param("input_scale")),
               static_cast<int>(c.golden().param("input_zero_point")));
  }
}

// Input gradients through int8 per-channel (or float) filters (channel axis:
// 0 for OHWI conv and [Cout, Cin] FC filters, 3 for [1, kh, kw, C*M]
// depthwise filters), with the optional mask (input 2) of masked_* cases.
Builder InputGrad(int channel_axis) {
  return [channel_axis](OpCase& c) {
    c.Input("grad_output");
    const int filter = c.Input("filter");
    if (c.golden().tensor("filter").dtype == "i8") {
      c.QuantizePerChannel(filter, "scales", channel_axis);
    }
    if (c.golden().has_tensor("mask")) c.Input("mask");
    c.Output("expected_grad_input");
    c.options = c.ConvOptions();
  };
}

// TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE: the 8 positional inputs, absent ones
// -1; every parameter is a variable updated in place (float masters and
// their int8 / int32 copies, per-channel scales on axis 0, depthwise filter
// 3).
Builder Update(bool depthwise) {
  return [depthwise](OpCase& c) {
    const GoldenCase& g = c.golden();
    c.Input("grad_output");
    c.Optional("mask");
    QuantizeInput(c, c.Optional("input"), "input");
    const int channels = c.Optional("channels");
    if (channels >= 0) c.Constant(channels);
    const int filter = c.Parameter("filter");
    const int filter_q = c.Parameter("filter_q");
    if (filter_q >= 0) {
      c.QuantizePerChannel(filter_q, "filter_q_scales", depthwise ? 3 : 0);
    }
    c.Parameter("bias");
    const int bias_q = c.Parameter("bias_q");
    if (bias_q >= 0) c.QuantizePerChannel(bias_q, "bias_q_scales", 0);
    // The fused input gradient: input 8 (a constant filter, or the trained
    // filter tensor itself) and output 0.
    if (g.has_tensor("input_grad_filter")) {
      const int f = c.Input("input_grad_filter");
      c.Constant(f);
      if (g.tensor("input_grad_filter").dtype == "i8") {
        c.QuantizePerChannel(f, "input_grad_filter_scales", depthwise ? 3 : 0);
      }
      c.Output("expected_grad_input");
    } else if (g.param_or("input_grad_filter_is_filter", 0) != 0) {
      c.Reuse(filter);
      c.Output("expected_grad_input");
    }
    c.options = c.ConvOptions();
    c.options.Float("learning_rate", g.param("learning_rate"))
        .Bool("qas", g.param("qas") != 0);
    if (!depthwise) {
      c.options.Int("channel_axis", static_cast<int64_t>(g.param("channel_axis")));
    }
  };
}

// TL_DEPTHWISE_CHAIN_UPDATE: the 8 positional inputs (absent ones -1),
// input 8 up_filter with output 0 (the upstream's input gradient) when the
// case has one, and with a downstream inputs 9-11 (input 8 then -1 when
// absent). Filters are constants (int8 per-channel: depthwise axis 3, 1x1
// axis 0); biases and their int32 copies variables updated in place.
void ChainUpdate(OpCase& c) {
  const GoldenCase& g = c.golden();
  const auto filter = [&c, &g](const std::string& name, int axis) {
    const int index = c.Input(name);
    c.Constant(index);
    if (g.tensor(name).dtype == "i8") {
      c.QuantizePerChannel(index, name + "_scales", axis);
    }
  };
  const auto bias = [&c](const std::string& name) {
    c.Parameter(name);
    const int q = c.Parameter(name + "_q");
    if (q >= 0) c.QuantizePerChannel(q, name + "_q_scales", 0);
  };
  c.Input("grad_output");
  c.Optional("mask");
  filter("filter", 3);
  bias("bias");
  c.Optional("up_mask");
  bias("up_bias");
  const bool downstream = g.has_tensor("ds_filter");
  if (g.has_tensor("up_filter")) {
    filter("up_filter", 0);
    c.Output("expected_up_grad_input");
  } else if (downstream) {
    c.Absent();
  }
  if (downstream) {
    filter("ds_filter", 0);
    bias("ds_bias");
  }
  c.options = c.ConvOptions();
  c.options.Int("in_h", static_cast<int64_t>(g.param("in_h")))
      .Int("in_w", static_cast<int64_t>(g.param("in_w")))
      .Float("learning_rate", g.param("learning_rate"))
      .Bool("qas", g.param("qas") != 0);
}

// TL_WS_CONV_UPDATE: TL_CONV_UPDATE's 8 positional inputs (channels,
// filter_q, bias_q absent), the raw filter and the bias variables; with
// input_grad_filter (TL_CONV's filter_hat, a planned tensor of the graph)
// input 8 and the fused input gradient; a golden with that gradient but no
// input_grad_filter passes the raw filter tensor again as input 8 (the op
// standardises it itself).
void WsConvUpdate(OpCase& c) {
  c.Input("grad_output");
  c.Optional("mask");
  c.Input("input");
  c.Optional("channels");
  const int filter = c.Parameter("filter");
  c.Parameter("filter_q");
  c.Parameter("bias");
  c.Parameter("bias_q");
  if (c.golden().has_tensor("input_grad_filter")) {
    c.Input("input_grad_filter");
    c.Output("expected_grad_input");
  } else if (c.golden().has_tensor("expected_grad_input")) {
    c.Reuse(filter);
    c.Output("expected_grad_input");
  }
  c.options = c.ConvOptions();
  c.options.Float("epsilon", c.golden().param("epsilon"))
      .Float("learning_rate", c.golden().param("learning_rate"));
}

// TL_DEPTHWISE_CONV: input, filter[, bias] -> output[, mask].
void DepthwiseConv(OpCase& c) {
  c.Input("input");
  c.Input("filter");
  if (c.golden().has_tensor("bias")) c.Input("bias");
  c.Output("expected_output");
  if (c.golden().has_tensor("expected_mask")) {
    c.Output("expected_mask", /*exact=*/true);
  }
  c.options = c.ConvOptions();
  c.options.Int("activation",
                static_cast<int64_t>(c.golden().param("activation")));
}

// TL_INVERTED_RESIDUAL: input, [expand_filter, expand_bias], depthwise_filter,
// depthwise_bias, project_filter, project_bias -> output[, expand_mask]
// [, depthwise_mask] (all int8 / int32, constants per-channel quantized; the
// expand pair absent without one, its window the filter's, its stride and
// padding options; the masks the golden has).
void InvertedResidual(OpCase& c) {
  const GoldenCase& g = c.golden();
  const auto zp = [&g](const char* key) { return static_cast<int>(g.param(key)); };
  c.Quantize(c.Input("input"), static_cast<float>(g.param("input_scale")),
             zp("input_zero_point"));
  const auto conv = [&c](const std::string& prefix, int axis) {
    const int filter = c.Input(prefix + "_filter");
    c.Constant(filter);
    c.QuantizePerChannel(filter, prefix + "_scales", axis);
    c.Constant(c.Input(prefix + "_bias"));
  };
  if (g.param("has_expand") != 0) {
    conv("expand", 0);
  } else {
    c.Absent();
    c.Absent();
  }
  conv("depthwise", 3);
  conv("project", 0);
  c.Quantize(c.Output("expected_output", /*exact=*/true),
             static_cast<float>(g.param("output_scale")), zp("output_zero_point"));
  for (const char* mask : {"expected_expand_mask", "expected_depthwise_mask"}) {
    if (g.has_tensor(mask)) c.Output(mask, /*exact=*/true);
  }
  c.options = c.ConvOptions();
  c.options.Int("depthwise_activation", zp("depthwise_activation"))
      .Float("depthwise_scale", g.param("depthwise_scale"))
      .Int("depthwise_zero_point", zp("depthwise_zero_point"))
      .Int("expand_activation", zp("expand_activation"))
      .Int("expand_padding", zp("expand_padding"))
      .Float("expand_scale", g.param("expand_scale"))
      .Int("expand_stride_h", zp("expand_stride_h"))
      .Int("expand_stride_w", zp("expand_stride_w"))
      .Int("expand_zero_point", zp("expand_zero_point"));
}

// TL_INVERTED_RESIDUAL_INPUT_GRAD: grad_output, [out_mask], project_filter,
// depthwise_filter, [dw_mask][, expand_filter, [expand_mask]] -> grad_input
// (int8 filters constant, per-channel quantized; no trailing inputs without
// an expand conv).
void InvertedResidualInputGrad(OpCase& c) {
  const GoldenCase& g = c.golden();
  const auto optional = [&c, &g](const std::string& name) {
    if (g.has_tensor(name)) {
      c.Input(name);
    } else {
      c.Absent();
    }
  };
  const auto filter = [&c](const std::string& prefix, int axis) {
    const int index = c.Input(prefix + "_filter");
    c.Constant(index);
    c.QuantizePerChannel(index, prefix + "_scales", axis);
  };
  c.Input("grad_output");
  optional("out_mask");
  filter("project", 0);
  filter("depthwise", 3);
  optional("dw_mask");
  if (g.param("has_expand") != 0) {
    filter("expand", 0);
    optional("expand_mask");
  }
  c.Output("expected_grad_input");
  c.options = c.ConvOptions();
}

// TL_INVERTED_RESIDUAL_UPDATE: the 17 positional inputs (absent ones -1)
// and grad_input. The expand filter is a constant; the depthwise and project
// filters are the variable int8 copies of their masters when those train (a
// constant otherwise); masters, biases and bias_qs are variables updated in
// place; scales per channel (1x1 axis 0, depthwise 3, bias_q 0).
void InvertedResidualUpdate(OpCase& c) {
  const auto filter = [&c](const std::string& name, int axis) {
    const int index = c.Input(name);
    c.Constant(index);
    c.QuantizePerChannel(index, name + "_scales", axis);
  };
  c.Input("grad_output");
  c.Optional("grad_output_mask");
  const int project = c.Parameter("project_filter");
  c.QuantizePerChannel(project, "project_filter_scales", 0);
  const int depthwise = c.Parameter("depthwise_filter");
  c.QuantizePerChannel(depthwise, "depthwise_filter_scales", 3);
  c.Optional("depthwise_mask");
  filter("expand_filter", 0);
  c.Optional("expand_mask");
  QuantizeInput(c, c.Optional("input"), "input");
  const int channels = c.Optional("channels");
  if (channels >= 0) c.Constant(channels);
  c.Parameter("filter");
  c.Parameter("bias");
  const int bias_q = c.Parameter("bias_q");
  if (bias_q >= 0) c.QuantizePerChannel(bias_q, "bias_q_scales", 0);
  const int project_input = c.Optional("project_input");
  if (project_input >= 0) {
    c.Quantize(project_input,
               static_cast<float>(c.golden().param("project_input_scale")),
               static_cast<int>(c.golden().param("project_input_zero_point")));
  }
  const int project_channels = c.Optional("project_channels");
  if (project_channels >= 0) c.Constant(project_channels);
  c.Parameter("project_master");
  c.Parameter("project_bias");
  const int project_bias_q = c.Parameter("project_bias_q");
  if (project_bias_q >= 0) {
    c.QuantizePerChannel(project_bias_q, "project_bias_q_scales", 0);
  }
  c.Output("expected_grad_input");
  c.options = c.ConvOptions();
  c.options.Float("learning_rate", c.golden().param("learning_rate"))
      .Int("project_channel_axis",
           static_cast<int64_t>(c.golden().param_or("project_channel_axis", 0)))
      .Bool("qas", c.golden().param("qas") != 0);
}

// TL_CONV: input, filter[, bias] -> output[, mask][, filter_hat]; a
// standardised filter is the trained (variable) raw filter. ConvNoFilterHat:
// the same without the filter_hat output (the values on the fly).
void ConvWith(OpCase& c, bool filter_hat) {
  const bool standardize = c.golden().param("standardize") != 0;
  c.Input("input");
  if (standardize) {
    c.Variable("filter");
  } else {
    c.Input("filter");
  }
  if (c.golden().has_tensor("bias")) c.Input("bias");
  c.Output("expected_output");
  if (c.golden().has_tensor("expected_mask")) {
    c.Output("expected_mask", /*exact=*/true);
  }
  if (standardize && filter_hat) c.Output("expected_filter_hat");
  c.options = c.ConvOptions();
  c.options.Int("activation",
                static_cast<int64_t>(c.golden().param("activation")))
      .Float("epsilon", c.golden().param("epsilon"))
      .Bool("standardize", standardize);
}
void Conv(OpCase& c) { ConvWith(c, true); }
void ConvNoFilterHat(OpCase& c) { ConvWith(c, false); }

void SoftmaxXent(OpCase& c) {
  c.Input("logits");
  c.Input("labels");
  c.Output("expected_loss");
  c.Output("expected_grad_logits");
  c.options.Float("label_smoothing", c.golden().param("label_smoothing"));
}

void AvgPoolGrad(OpCase& c) {
  c.Input("grad_output");
  if (c.golden().has_tensor("addend")) c.Input("addend");
  c.Output("expected_grad_input");
  c.options = c.ConvOptions();
  c.options.Int("filter_h", static_cast<int64_t>(c.golden().param("filter_h")))
      .Int("filter_w", static_cast<int64_t>(c.golden().param("filter_w")));
}

void ResizeBilinearGrad(OpCase& c) {
  c.Input("grad_output");
  c.Output("expected_grad_input");
  c.options.Bool("align_corners", c.golden().param("align_corners") != 0)
      .Bool("half_pixel_centers", c.golden().param("half_pixel_centers") != 0);
}

Options NormOptions(const GoldenCase& g) {
  Options o;
  o.Float("epsilon", g.param("epsilon"))
      .Int("groups", static_cast<int64_t>(g.param("groups")));
  return o;
}

void GroupNorm(OpCase& c) {
  c.Input("x");
  for (const char* name : {"gamma", "beta"}) {
    const int index = c.Optional(name);
    if (index >= 0) c.Constant(index);
  }
  c.Output("expected_y");
  c.options = NormOptions(c.golden());
}

// Gamma with an expected_gamma is trained (variable), without one frozen
// (constant); grad_input is an output only when the case expects it.
void GroupNormGrad(OpCase& c) {
  c.Input("grad_output");
  c.Optional("mask");
  c.Input("x");
  c.Parameter("gamma");
  c.Parameter("beta");
  if (c.golden().has_tensor("expected_grad_input")) c.Output("expected_grad_input");
  c.options = NormOptions(c.golden());
  c.options.Float("learning_rate", c.golden().param("learning_rate"));
}

void BatchNormGrad(OpCase& c) {
  c.Input("grad_output");
  c.Optional("mask");
  QuantizeInput(c, c.Optional("x"), "x");
  for (const char* name : {"mean", "inv_std"}) {
    const int index = c.Optional(name);
    if (index >= 0) c.Constant(index);
  }
  c.Parameter("gamma");
  c.Parameter("beta");
  if (c.golden().has_tensor("expected_grad_input")) c.Output("expected_grad_input");
  c.options.Float("learning_rate", c.golden().param("learning_rate"));
}

// The raw filter w is the trained variable the lowering gives the op.
void WeightStandardize(OpCase& c) {
  c.Variable("w");
  c.Output("expected_w_hat");
  c.options.Float("epsilon", c.golden().param("epsilon"));
}

void WeightStandardizeGrad(OpCase& c) {
  c.Variable("w");
  c.Input("grad_w_hat");
  c.Output("expected_grad_w");
  c.options.Float("epsilon", c.golden().param("epsilon"));
}

const GoldenTest kGoldenTests[] = {
    {"bias_grad.golden", "TL_BIAS_GRAD", "",
     [](OpCase& c) {
       c.Input("grad_output");
       c.Output("expected_grad_bias");
     }},
    {"bias_grad.golden", "TL_BIAS_GRAD_SGD", "in place",
     [](OpCase& c) {
       c.Input("grad_output");
       c.Check(c.Variable("bias"), "expected_bias");
       c.options.Float("learning_rate", c.golden().param("learning_rate"));
     }},
    {"bias_grad.golden", "TL_BIAS_GRAD_SGD", "functional",
     [](OpCase& c) {
       c.Input("grad_output");
       c.Input("bias");
       c.Output("expected_bias");
       c.options.Float("learning_rate", c.golden().param("learning_rate"));
     }},
    {"conv_weight_grad.golden", "TL_CONV_WGRAD_SPARSE", "", ConvWeightGrad},
    {"depthwise_weight_grad.golden", "TL_DEPTHWISE_WGRAD", "",
     DepthwiseWeightGrad},
    {"conv_input_grad.golden", "TL_CONV_INPUT_GRAD", "", InputGrad(0)},
    {"depthwise_input_grad.golden", "TL_DEPTHWISE_INPUT_GRAD", "",
     InputGrad(3)},
    {"activation_mask.golden", "TL_RELU_MASK", "",
     [](OpCase& c) {
       c.Input("x");
       c.Output("expected_mask", /*exact=*/true);
       c.options.Bool("relu6", c.golden().param("relu6") != 0);
     }},
    {"activation_mask.golden", "TL_MASKED_GRAD", "",
     [](OpCase& c) {
       c.Input("grad_output");
       c.Input("expected_mask");
       c.Output("expected_grad_input", /*exact=*/true);
     }},
    {"sgd.golden", "TL_SGD_UPDATE", "in place, two steps",
     [](OpCase& c) {
       const bool momentum = c.golden().param("momentum") != 0;
       const int weights = c.Variable("weights");
       const int grad = c.Input("grad_1");
       const int velocity = momentum ? c.ZeroVariable("weights") : -1;
       for (int step = 1; step <= 2; ++step) {
         if (step == 2) c.NextStep();
         c.Feed(grad, "grad_" + std::to_string(step));
         c.Check(weights, "expected_weights_" + std::to_string(step));
         if (momentum) {
           c.Check(velocity, "expected_velocity_" + std::to_string(step));
         }
       }
       c.options.Float("learning_rate", c.golden().param("learning_rate"))
           .Float("momentum", c.golden().param("momentum"));
     }},
    {"sgd.golden", "TL_SGD_UPDATE", "functional, one step",
     [](OpCase& c) {
       const bool momentum = c.golden().param("momentum") != 0;
       c.Input("weights");
       c.Input("grad_1");
       if (momentum) c.ZeroVariable("weights");
       c.Output("expected_weights_1");
       if (momentum) c.Output("expected_velocity_1");
       c.options.Float("learning_rate", c.golden().param("learning_rate"))
           .Float("momentum", c.golden().param("momentum"));
     }},
    {"conv_update.golden", "TL_CONV_UPDATE", "in place", Update(false)},
    {"depthwise_update.golden", "TL_DEPTHWISE_UPDATE", "in place", Update(true)},
    {"depthwise_chain_update.golden", "TL_DEPTHWISE_CHAIN_UPDATE", "in place",
     ChainUpdate},
    {"softmax_xent.golden", "TL_SOFTMAX_XENT", "", SoftmaxXent},
    {"avgpool_grad.golden", "TL_AVGPOOL_GRAD", "", AvgPoolGrad},
    {"resize_bilinear_grad.golden", "TL_RESIZE_BILINEAR_GRAD", "",
     ResizeBilinearGrad},
    {"group_norm.golden", "TL_GROUPNORM", "", GroupNorm},
    {"group_norm_grad.golden", "TL_GROUPNORM_GRAD", "in place", GroupNormGrad},
    {"batch_norm_grad.golden", "TL_BATCHNORM_GRAD", "in place", BatchNormGrad},
    {"weight_standardize.golden", "TL_WEIGHT_STANDARDIZE", "", WeightStandardize},
    {"weight_standardize_grad.golden", "TL_WEIGHT_STANDARDIZE_GRAD", "",
     WeightStandardizeGrad},
    {"depthwise_conv.golden", "TL_DEPTHWISE_CONV", "", DepthwiseConv},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL", "", InvertedResidual},
    {"inverted_residual_input_grad.golden", "TL_INVERTED_RESIDUAL_INPUT_GRAD", "",
     InvertedResidualInputGrad},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE", "",
     InvertedResidualUpdate},
    {"conv.golden", "TL_CONV", "", Conv},
    {"conv.golden", "TL_CONV", "standardised on the fly", ConvNoFilterHat},
    {"ws_conv_update.golden", "TL_WS_CONV_UPDATE", "", WsConvUpdate},
};

// ---------------------------------------------------------------------------
// Prepare rejections: a valid golden case (named, so the numbers in the
// message are fixed), broken one way; Prepare must fail and print `message`
// (a substring of its MicroPrintf output). Breakages find tensors by the
// golden name the builder gave them (c.Index), not by position.

struct RejectTest {
  const char* golden;
  const char* op;
  const char* golden_case;  // the case broken
  Builder build;            // the valid case
  Builder breakage;         // applied after build
  const char* message;      // expected in the captured MicroPrintf output
};

const Builder kBiasGrad = kGoldenTests[0].build;
const Builder kBiasGradSgdInPlace = kGoldenTests[1].build;
const Builder kReluMask = kGoldenTests[7].build;
const Builder kMaskedGrad = kGoldenTests[8].build;
const Builder kSgdInPlace = kGoldenTests[9].build;
const Builder kSgdFunctional = kGoldenTests[10].build;

void SetType(OpCase& c, const char* name, TfLiteType type) {
  c.tensor(c.Index(name)).type = type;
}

const RejectTest kRejectTests[] = {
    {"bias_grad.golden", "TL_BIAS_GRAD", "dense_rows", kBiasGrad,
     [](OpCase& c) { SetType(c, "grad_output", kTfLiteInt32); },
     "TL_BIAS_GRAD: grad_output must be float32"},
    {"bias_grad.golden", "TL_BIAS_GRAD", "dense_rows", kBiasGrad,
     [](OpCase& c) { c.Reshape(c.Index("expected_grad_bias"), {3}); },
     "TL_BIAS_GRAD: grad_bias must be float32 ["},
    {"bias_grad.golden", "TL_BIAS_GRAD_SGD", "dense_rows", kBiasGradSgdInPlace,
     [](OpCase& c) { c.tensor(c.Index("bias")).is_variable = false; },
     "TL_BIAS_GRAD_SGD: without an output the bias is updated in place and "
     "must be a variable tensor"},
    {"bias_grad.golden", "TL_BIAS_GRAD_SGD", "dense_rows", kBiasGradSgdInPlace,
     [](OpCase& c) { c.options = Options(); },
     "TL_BIAS_GRAD_SGD: needs exactly one option, 'learning_rate'"},
    {"conv_weight_grad.golden", "TL_CONV_WGRAD_SPARSE", "g4_k3_s2_valid_even",
     ConvWeightGrad,
     [](OpCase& c) {
       std::vector<int32_t> shape = c.golden().tensor("grad_output").shape;
       shape[1] += 1;  // one row more than the convolution produces
       c.Reshape(c.Index("grad_output"), shape);
     },
     "TL_CONV_WGRAD_SPARSE: grad_output is 1x4x3x4 but the convolution output "
     "is 1x3x3x4"},
    {"conv_weight_grad.golden", "TL_CONV_WGRAD_SPARSE", "g4_k3_s2_valid_even",
     ConvWeightGrad,
     [](OpCase& c) { c.tensor(c.Index("channels")).data.i32[0] = 1000; },
     "TL_CONV_WGRAD_SPARSE: channel indices must lie in [0, 4)"},
    {"conv_weight_grad.golden", "TL_CONV_WGRAD_SPARSE", "g4_k3_s2_valid_even",
     ConvWeightGrad,
     [](OpCase& c) { c.options = Options().Int("padding", 1); },
     "TL_CONV_WGRAD_SPARSE: options must be padding (0/1), stride_h, stride_w"},
    {"conv_weight_grad.golden", "TL_CONV_WGRAD_SPARSE", "g4_k3_s2_valid_even",
     ConvWeightGrad,
     [](OpCase& c) { SetType(c, "input", kTfLiteInt16); },
     "TL_CONV_WGRAD_SPARSE: input must be float32 or int8 NHWC"},
    {"depthwise_weight_grad.golden", "TL_DEPTHWISE_WGRAD", "k3_s1_same_odd",
     DepthwiseWeightGrad,
     [](OpCase& c) {
       SetType(c, "input", kTfLiteInt8);
       c.tensor(c.Index("input")).params.scale = 0.0f;
     },
     "TL_DEPTHWISE_WGRAD: an int8 input needs a positive quantization scale"},
    {"conv_input_grad.golden", "TL_CONV_INPUT_GRAD", "k3_s1_same_odd",
     InputGrad(0),
     [](OpCase& c) { SetType(c, "filter", kTfLiteInt16); },
     "TL_CONV_INPUT_GRAD: filter must be int8 or float32 OHWI (or [Cout, "
     "Cin]), got INT16 of rank 4"},
    {"conv_input_grad.golden", "TL_CONV_INPUT_GRAD", "k3_s1_same_odd",
     InputGrad(0),
     [](OpCase& c) {
       auto* q = static_cast<TfLiteAffineQuantization*>(
           c.tensor(c.Index("filter")).quantization.params);
       q->zero_point->data[1] = 3;
     },
     "TL_CONV_INPUT_GRAD: int8 filter zero points must be 0 (symmetric), got 3"},
    {"conv_input_grad.golden", "TL_CONV_INPUT_GRAD", "masked_k3_s2_same_odd_batch2",
     InputGrad(0),
     [](OpCase& c) { c.Reshape(c.Index("mask"), {19}); },
     "TL_CONV_INPUT_GRAD: mask must be uint8 [20]"},
    {"conv_input_grad.golden", "TL_CONV_INPUT_GRAD", "fc_masked_batch2",
     InputGrad(0),
     [](OpCase& c) { c.Reshape(c.Index("filter"), {6, 3, 3}); },
     "TL_CONV_INPUT_GRAD: filter must be int8 or float32 OHWI (or [Cout, "
     "Cin]), got INT8 of rank 3"},
    {"depthwise_input_grad.golden", "TL_DEPTHWISE_INPUT_GRAD", "k3_s1_same_odd",
     InputGrad(3),
     [](OpCase& c) {
       const int filter = c.Index("filter");
       const int channels = c.tensor(filter).dims->data[3];  // 3
       c.QuantizePerChannel(filter, std::vector<float>(channels + 1, 0.01f), 3);
     },
     "TL_DEPTHWISE_INPUT_GRAD: filter has 4 scales, expected 1 or 3"},
    {"depthwise_input_grad.golden", "TL_DEPTHWISE_INPUT_GRAD",
     "masked_k3_s1_valid_mult2", InputGrad(3),
     [](OpCase& c) { SetType(c, "expected_grad_input", kTfLiteInt8); },
     "TL_DEPTHWISE_INPUT_GRAD: grad_input must be float32 NHWC"},
    {"depthwise_input_grad.golden", "TL_DEPTHWISE_INPUT_GRAD",
     "masked_k3_s1_valid_mult2", InputGrad(3),
     [](OpCase& c) { SetType(c, "mask", kTfLiteInt8); },
     "TL_DEPTHWISE_INPUT_GRAD: mask must be uint8 [6]"},
    {"activation_mask.golden", "TL_RELU_MASK", "relu6_37", kReluMask,
     [](OpCase& c) { c.Reshape(c.Index("expected_mask"), {100}); },
     "TL_RELU_MASK: mask must be uint8 [5]"},
    {"activation_mask.golden", "TL_RELU_MASK", "relu6_37", kReluMask,
     [](OpCase& c) { SetType(c, "x", kTfLiteInt32); },
     "TL_RELU_MASK: x must be float32 or int8, got INT32"},
    {"activation_mask.golden", "TL_MASKED_GRAD", "relu6_37", kMaskedGrad,
     [](OpCase& c) { c.Reshape(c.Index("expected_mask"), {0}); },
     "TL_MASKED_GRAD: mask must be uint8 [5] for 37 gradients"},
    {"sgd.golden", "TL_SGD_UPDATE", "momentum_single", kSgdFunctional,
     [](OpCase& c) { c.Reshape(c.Index("grad_1"), {2, 1000}); },
     "TL_SGD_UPDATE: grad must be float32 with 1 elements"},
    {"sgd.golden", "TL_SGD_UPDATE", "momentum_single", kSgdInPlace,
     [](OpCase& c) { c.tensor(c.Index("weights")).is_variable = false; },
     "TL_SGD_UPDATE: without outputs weights is updated in place and must be "
     "a variable tensor"},
    // The in-place updates.
    {"conv_update.golden", "TL_CONV_UPDATE", "float_k3_s1_same_odd",
     Update(false),
     [](OpCase& c) { c.tensor(c.Index("filter")).is_variable = false; },
     "TL_CONV_UPDATE: filter"},
    {"conv_update.golden", "TL_CONV_UPDATE", "float_k3_s1_same_odd",
     Update(false),
     [](OpCase& c) { c.tensor(c.Index("channels")).data.i32[0] = 7; },
     "TL_CONV_UPDATE: channel 7 (position 0) is outside [0, 4)"},
    {"conv_update.golden", "TL_CONV_UPDATE", "int8_k3_s1_same_odd_qas",
     Update(false),
     [](OpCase& c) {
       const int filter_q = c.Index("filter_q");
       c.QuantizePerChannel(filter_q, std::vector<float>(5, 0.01f), 0);
     },
     "TL_CONV_UPDATE: filter_q"},
    {"conv_update.golden", "TL_CONV_UPDATE", "bias_only_masked", Update(false),
     [](OpCase& c) { c.Reshape(c.Index("mask"), {24}); },
     "TL_CONV_UPDATE: mask must be uint8 [25]"},
    {"depthwise_update.golden", "TL_DEPTHWISE_UPDATE",
     "float_k3_s2_same_odd_batch2_subset_masked", Update(true),
     [](OpCase& c) { c.Reshape(c.Index("filter"), {1, 3, 3, 5}); },
     "TL_DEPTHWISE_UPDATE: filter is [1, 3, 3, 5], expected [1, kh, kw, 4]"},
    {"depthwise_update.golden", "TL_DEPTHWISE_UPDATE", "int8_bias_only_no_qas",
     Update(true),
     [](OpCase& c) { SetType(c, "bias_q", kTfLiteInt8); },
     "TL_DEPTHWISE_UPDATE: bias_q"},
    {"depthwise_conv.golden", "TL_DEPTHWISE_CONV", "k3_s1_same_odd_relu6_mask",
     DepthwiseConv, [](OpCase& c) { c.Reshape(c.Index("bias"), {2}); },
     "TL_DEPTHWISE_CONV: bias must be float32 [3]"},
    {"depthwise_conv.golden", "TL_DEPTHWISE_CONV",
     "k3_s2_same_odd_batch2_relu_mask", DepthwiseConv,
     [](OpCase& c) { c.Reshape(c.Index("expected_output"), {2, 3, 3, 4}); },
     "TL_DEPTHWISE_CONV: output is 2x3x3x4 but the convolution output is "
     "2x4x4x4"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "expand_k3_s2_same_odd_batch2_relu6", InvertedResidual,
     [](OpCase& c) { c.Reshape(c.Index("expected_output"), {2, 3, 4, 5}); },
     "TL_INVERTED_RESIDUAL: output is 2x3x4x5 but the block's output is "
     "2x4x4x5"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "expand_k3_s1_same_relu6", InvertedResidual,
     [](OpCase& c) { SetType(c, "project_bias", kTfLiteInt8); },
     "TL_INVERTED_RESIDUAL: project_bias must be int32 [4]"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "no_expand_k3_s1_same_relu6", InvertedResidual,
     [](OpCase& c) { c.Reshape(c.Index("depthwise_filter"), {1, 3, 3, 4}); },
     "TL_INVERTED_RESIDUAL: without an expand conv the depthwise_filter has "
     "the input's 5 channels, not 4"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "expand_k3_s1_same_relu6", InvertedResidual,
     [](OpCase& c) { c.Reshape(c.Index("expected_expand_mask"), {29}); },
     "TL_INVERTED_RESIDUAL: expand_mask must be uint8 [30] (the 1-bit mask of "
     "240 values)"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "no_expand_k3_s1_same_relu6", InvertedResidual,
     [](OpCase& c) { SetType(c, "expected_depthwise_mask", kTfLiteInt8); },
     "TL_INVERTED_RESIDUAL: depthwise_mask must be uint8 [19]"},
    // The expand conv's own geometry: its window, stride and padding.
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "expand_k3_s2_valid_odd_dw_valid_s2_relu6", InvertedResidual,
     [](OpCase& c) { c.Reshape(c.Index("expand_filter"), {6, 11, 3, 2}); },
     "TL_INVERTED_RESIDUAL: the 11x3 expand window (stride 2x2, VALID) does "
     "not fit the 9x9 input"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "stem_k3_s2_same_odd_relu6", InvertedResidual,
     [](OpCase& c) {
       const GoldenCase& g = c.golden();
       c.options = c.ConvOptions();
       c.options.Int("depthwise_activation", 2)
           .Float("depthwise_scale", g.param("depthwise_scale"))
           .Int("depthwise_zero_point", static_cast<int>(g.param("depthwise_zero_point")))
           .Int("expand_activation", 2)
           .Int("expand_padding", 1)
           .Float("expand_scale", g.param("expand_scale"))
           .Int("expand_stride_h", 0)
           .Int("expand_stride_w", 2)
           .Int("expand_zero_point", static_cast<int>(g.param("expand_zero_point")));
     },
     "TL_INVERTED_RESIDUAL: options must be depthwise_activation and "
     "expand_activation (0 none, 1 relu, 2 relu6), depthwise_scale, "
     "depthwise_zero_point, expand_scale, expand_zero_point (int8), "
     "expand_padding, padding (0/1), expand_stride_h, expand_stride_w, "
     "stride_h, stride_w (positive)"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "stem_k3_s2_same_odd_relu6", InvertedResidual,
     [](OpCase& c) { c.Reshape(c.Index("expand_filter"), {8, 3, 3, 2}); },
     "TL_INVERTED_RESIDUAL: expand_filter must be [8, kh, kw, 3] (the "
     "depthwise channels, the input channels; one group)"},
    {"inverted_residual.golden", "TL_INVERTED_RESIDUAL",
     "stem_k3_s2_same_odd_relu6", InvertedResidual,
     [](OpCase& c) { c.Reshape(c.Index("expected_expand_mask"), {99}); },
     "TL_INVERTED_RESIDUAL: expand_mask must be uint8 [30] (the 1-bit mask of "
     "240 values)"},
    {"inverted_residual_input_grad.golden", "TL_INVERTED_RESIDUAL_INPUT_GRAD",
     "expand_k3_s2_same_odd_batch2", InvertedResidualInputGrad,
     [](OpCase& c) { c.Reshape(c.Index("grad_output"), {2, 3, 4, 5}); },
     "TL_INVERTED_RESIDUAL_INPUT_GRAD: grad_output is 2x3x4x5 but the block's "
     "output is 2x4x4x5"},
    {"inverted_residual_input_grad.golden", "TL_INVERTED_RESIDUAL_INPUT_GRAD",
     "expand_k3_s1_same_masks", InvertedResidualInputGrad,
     [](OpCase& c) { c.Reshape(c.Index("project_filter"), {4, 1, 1, 7}); },
     "TL_INVERTED_RESIDUAL_INPUT_GRAD: project_filter must be int8 [4, 1, 1, 8] "
     "(grad_output's channels, the depthwise channels)"},
    {"inverted_residual_input_grad.golden", "TL_INVERTED_RESIDUAL_INPUT_GRAD",
     "expand_k3_s1_same_masks", InvertedResidualInputGrad,
     [](OpCase& c) { c.Reshape(c.Index("expand_mask"), {29}); },
     "TL_INVERTED_RESIDUAL_INPUT_GRAD: mask must be uint8 [30]"},
    {"inverted_residual_input_grad.golden", "TL_INVERTED_RESIDUAL_INPUT_GRAD",
     "no_expand_k3_s1_same_batch2", InvertedResidualInputGrad,
     [](OpCase& c) { SetType(c, "depthwise_filter", kTfLiteFloat32); },
     "TL_INVERTED_RESIDUAL_INPUT_GRAD: depthwise_filter must be int8 [1, kh, kw, E]"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "k3_s1_same_subset_masks_batch2", InvertedResidualUpdate,
     [](OpCase& c) { c.Reshape(c.Index("filter"), {1, 3, 3, 4}); },
     "TL_INVERTED_RESIDUAL_UPDATE: filter must be float32 [1, 3, 3, 3] (the "
     "float master of the chosen channels)"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "k3_s2_same_odd_subset_out_mask", InvertedResidualUpdate,
     [](OpCase& c) { c.tensor(c.Index("depthwise_filter")).is_variable = false; },
     "TL_INVERTED_RESIDUAL_UPDATE: depthwise_filter is updated in place and "
     "must be a variable tensor"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "k3_s2_valid_even_full_input", InvertedResidualUpdate,
     [](OpCase& c) { c.Reshape(c.Index("input"), {2, 8, 7, 5}); },
     "TL_INVERTED_RESIDUAL_UPDATE: input must be the saved int8 depthwise input "
     "[2, 8, 7, 6] (or only the 2 chosen channels)"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "k3_s1_same_bias_only", InvertedResidualUpdate,
     [](OpCase& c) { c.Reshape(c.Index("expand_filter"), {6, 1, 1, 4}); },
     "TL_INVERTED_RESIDUAL_UPDATE: expand_filter must be int8 [6, 1, 1, 3] (the "
     "depthwise channels, grad_input's channels)"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "project_in_k3_s2_same_subset_masks", InvertedResidualUpdate,
     [](OpCase& c) { c.Reshape(c.Index("project_master"), {5, 1, 1, 4}); },
     "TL_INVERTED_RESIDUAL_UPDATE: project_master must be float32 [5, 1, 1, 3] "
     "(the float master of the chosen channels, project_channel_axis 1)"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "project_out_k3_s2_valid_full_input", InvertedResidualUpdate,
     [](OpCase& c) { c.tensor(c.Index("project_filter")).is_variable = false; },
     "TL_INVERTED_RESIDUAL_UPDATE: project_filter is updated in place and "
     "must be a variable tensor"},
    {"inverted_residual_update.golden", "TL_INVERTED_RESIDUAL_UPDATE",
     "project_out_k3_s2_valid_full_input", InvertedResidualUpdate,
     [](OpCase& c) { c.Reshape(c.Index("project_input"), {2, 3, 3, 2}); },
     "TL_INVERTED_RESIDUAL_UPDATE: project_input must be the project's saved "
     "int8 input [2, 3, 3, 6]"},
    {"conv.golden", "TL_CONV", "k3_s1_same_odd_relu6_mask", Conv,
     [](OpCase& c) { c.Reshape(c.Index("bias"), {3}); },
     "TL_CONV: bias must be float32 [4]"},
    {"conv.golden", "TL_CONV", "k3_s2_same_odd_batch2_relu_mask", Conv,
     [](OpCase& c) { c.Reshape(c.Index("expected_output"), {2, 3, 3, 3}); },
     "TL_CONV: output is 2x3x3x3 but the convolution output is 2x4x4x3"},
    {"ws_conv_update.golden", "TL_WS_CONV_UPDATE", "k3_s1_valid_bias_masked",
     WsConvUpdate,
     [](OpCase& c) {
       c.options = c.ConvOptions();
       c.options.Float("epsilon", -1.0).Float("learning_rate", 0.1);
     },
     "TL_WS_CONV_UPDATE: options must be epsilon (>= 0)"},
    {"conv.golden", "TL_CONV", "g2_k5_s2_same_lite_residual_ws", Conv,
     [](OpCase& c) { c.Reshape(c.Index("expected_filter_hat"), {8, 5, 5, 2}); },
     "TL_CONV: with standardize, the last output (filter_hat) must be float32 "
     "with the filter's shape"},
    // The fused input gradient.
    {"conv_update.golden", "TL_CONV_UPDATE", "bias_only_masked_input_grad_float",
     Update(false),
     [](OpCase& c) { c.Reshape(c.Index("expected_grad_input"), {2, 5, 5, 2}); },
     "TL_CONV_UPDATE: input_grad_filter is [4, 3, 3, 3]; expected 4 output "
     "channels and a divisor of grad_input's 2 channels"},
    {"depthwise_update.golden", "TL_DEPTHWISE_UPDATE",
     "bias_only_k3_s2_same_odd_masked_input_grad_float", Update(true),
     [](OpCase& c) { SetType(c, "input_grad_filter", kTfLiteInt16); },
     "TL_DEPTHWISE_UPDATE: input_grad_filter (input 8) must be the forward's "
     "int8 or float32 [1, kh, kw, C] filter"},
    {"depthwise_chain_update.golden", "TL_DEPTHWISE_CHAIN_UPDATE",
     "float_k3_s1_same_odd_up_grad_masked", ChainUpdate,
     [](OpCase& c) { c.Reshape(c.Index("up_bias"), {4}); },
     "TL_DEPTHWISE_CHAIN_UPDATE: up_bias must be [3]"},
    {"depthwise_chain_update.golden", "TL_DEPTHWISE_CHAIN_UPDATE",
     "int8_k3_s2_same_up_grad_int8_masked", ChainUpdate,
     [](OpCase& c) { c.Reshape(c.Index("expected_up_grad_input"), {1, 7, 6, 4}); },
     "TL_DEPTHWISE_CHAIN_UPDATE: up_grad_input must be float32 [1, 7, 6, 3]"},
    {"depthwise_chain_update.golden", "TL_DEPTHWISE_CHAIN_UPDATE",
     "float_k3_s1_same_batch2_ds_up_grad_masked", ChainUpdate,
     [](OpCase& c) { c.Reshape(c.Index("ds_filter"), {4, 1, 1, 4}); },
     "TL_DEPTHWISE_CHAIN_UPDATE: ds_filter (input 9) must be the downstream "
     "1x1 conv's int8 or float32 filter [5, 1, 1, C] (or [5, C])"},
    // Loss, pooling, resize, normalization.
    {"softmax_xent.golden", "TL_SOFTMAX_XENT", "n3_k5", SoftmaxXent,
     [](OpCase& c) { SetType(c, "labels", kTfLiteFloat32); },
     "TL_SOFTMAX_XENT: labels must be int32 [3] (class indices)"},
    {"softmax_xent.golden", "TL_SOFTMAX_XENT", "n3_k5", SoftmaxXent,
     [](OpCase& c) { c.options = Options().Float("label_smoothing", 1.0); },
     "TL_SOFTMAX_XENT: needs one option, label_smoothing in [0, 1)"},
    {"avgpool_grad.golden", "TL_AVGPOOL_GRAD", "k2_s2_same_odd", AvgPoolGrad,
     [](OpCase& c) { c.Reshape(c.Index("grad_output"), {1, 3, 3, 3}); },
     "TL_AVGPOOL_GRAD: grad_output is 1x3x3x3 but the convolution output is "
     "1x4x3x3"},
    {"avgpool_grad.golden", "TL_AVGPOOL_GRAD", "k2_s2_same_odd", AvgPoolGrad,
     [](OpCase& c) { c.options = c.ConvOptions(); },
     "TL_AVGPOOL_GRAD: options must be filter_h, filter_w, stride_h, stride_w "
     "(positive) and padding (0/1)"},
    {"resize_bilinear_grad.golden", "TL_RESIZE_BILINEAR_GRAD", "x2_half_pixel",
     ResizeBilinearGrad,
     [](OpCase& c) {
       c.options = Options().Bool("align_corners", true).Bool("half_pixel_centers", true);
     },
     "TL_RESIZE_BILINEAR_GRAD: align_corners and half_pixel_centers cannot "
     "both be true"},
    {"resize_bilinear_grad.golden", "TL_RESIZE_BILINEAR_GRAD", "x2_half_pixel",
     ResizeBilinearGrad,
     [](OpCase& c) { c.Reshape(c.Index("expected_grad_input"), {1, 3, 4, 3}); },
     "TL_RESIZE_BILINEAR_GRAD: grad_output 1x6x8x2 and grad_input 1x3x4x3 must "
     "share batch and channels"},
    {"group_norm.golden", "TL_GROUPNORM", "g2_c4_5x5", GroupNorm,
     [](OpCase& c) {
       c.options = Options().Float("epsilon", 1e-3).Int("groups", 3);
     },
     "TL_GROUPNORM: 4 channels do not split into 3 groups"},
    {"group_norm.golden", "TL_GROUPNORM", "g2_c4_5x5", GroupNorm,
     [](OpCase& c) { c.Reshape(c.Index("gamma"), {3}); },
     "TL_GROUPNORM: gamma must be float32 [4]"},
    {"group_norm_grad.golden", "TL_GROUPNORM_GRAD", "g2_c4_5x5", GroupNormGrad,
     [](OpCase& c) { c.tensor(c.Index("beta")).is_variable = false; },
     "TL_GROUPNORM_GRAD: beta is only an input to be trained: it must be a "
     "variable tensor"},
    {"group_norm_grad.golden", "TL_GROUPNORM_GRAD", "g4_c8_3x3_batch2_masked",
     GroupNormGrad,
     [](OpCase& c) { c.Reshape(c.Index("grad_output"), {2, 3, 3, 4}); },
     "TL_GROUPNORM_GRAD: grad_output must be float32 with x's shape"},
    {"batch_norm_grad.golden", "TL_BATCHNORM_GRAD", "nhwc_f32_both_trained",
     BatchNormGrad,
     [](OpCase& c) { c.Reshape(c.Index("mean"), {4}); },
     "TL_BATCHNORM_GRAD: mean must be float32 [3]"},
    {"batch_norm_grad.golden", "TL_BATCHNORM_GRAD", "nhwc_f32_both_trained",
     BatchNormGrad,
     [](OpCase& c) { c.options = Options(); },
     "TL_BATCHNORM_GRAD: needs one option, learning_rate"},
    {"weight_standardize.golden", "TL_WEIGHT_STANDARDIZE", "k3_co8_ci4",
     WeightStandardize,
     [](OpCase& c) { c.Reshape(c.Index("expected_w_hat"), {8, 3, 3, 3}); },
     "TL_WEIGHT_STANDARDIZE: w_hat must be float32 with w's shape"},
    {"weight_standardize.golden", "TL_WEIGHT_STANDARDIZE", "k3_co8_ci4",
     WeightStandardize,
     [](OpCase& c) { SetType(c, "w", kTfLiteInt8); },
     "TL_WEIGHT_STANDARDIZE: w must be float32 OHWI [Co, kh, kw, Ci] (or [Co, "
     "Ci]), got INT8 of rank 4"},
    {"weight_standardize.golden", "TL_WEIGHT_STANDARDIZE", "k3_co8_ci4",
     WeightStandardize,
     [](OpCase& c) { c.options = Options().Float("epsilon", -1.0); },
     "TL_WEIGHT_STANDARDIZE: needs one option, epsilon (>= 0)"},
    {"weight_standardize_grad.golden", "TL_WEIGHT_STANDARDIZE_GRAD",
     "g2_k5_co8_ci2_lite_residual", WeightStandardizeGrad,
     [](OpCase& c) { c.Reshape(c.Index("grad_w_hat"), {8, 5, 5, 4}); },
     "TL_WEIGHT_STANDARDIZE_GRAD: grad_w_hat must be float32 with w's shape"},
    {"weight_standardize_grad.golden", "TL_WEIGHT_STANDARDIZE_GRAD",
     "g2_k5_co8_ci2_lite_residual", WeightStandardizeGrad,
     [](OpCase& c) { c.Reshape(c.Index("w"), {8, 5, 10}); },
     "TL_WEIGHT_STANDARDIZE_GRAD: w must be float32 OHWI [Co, kh, kw, Ci] (or "
     "[Co, Ci]), got FLOAT32 of rank 3"},
    {"weight_standardize_grad.golden", "TL_WEIGHT_STANDARDIZE_GRAD",
     "g2_k5_co8_ci2_lite_residual", WeightStandardizeGrad,
     [](OpCase& c) { SetType(c, "expected_grad_w", kTfLiteInt32); },
     "TL_WEIGHT_STANDARDIZE_GRAD: grad_w must be float32 with w's shape"},
};

// ---------------------------------------------------------------------------

// Captures what MicroPrintf writes (to stderr on the host) during `fn`.
std::string CaptureLog(const std::function<void()>& fn) {
  std::fflush(stderr);
  FILE* sink = std::tmpfile();
  const int saved = dup(2);
  if (sink == nullptr || saved < 0) {
    fn();
    return "(capture failed)";
  }
  dup2(fileno(sink), 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string text;
  std::rewind(sink);
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), sink)) > 0) {
    text.append(buffer, n);
  }
  std::fclose(sink);
  return text;
}

using Resolver = tflite::MicroMutableOpResolver<tflm::kNumTrainingOps>;

const TFLMRegistration* Find(const Resolver& resolver, const char* op) {
  const TFLMRegistration* r = resolver.FindOp(op);
  if (r == nullptr) Fail(std::string(op) + " is not registered by AddTrainingOps");
  return r;
}

void RunGoldenTests(const Resolver& resolver, const std::string& dir) {
  for (const GoldenTest& test : kGoldenTests) {
    const TFLMRegistration* registration = Find(resolver, test.op);
    if (registration == nullptr) continue;
    int cases = 0;
    for (const GoldenCase& golden : testing::ReadGoldenCases(dir + "/" + test.golden)) {
      OpCase c(golden);
      test.build(c);
      const std::string what = std::string(test.op) +
                               (*test.variant ? " (" + std::string(test.variant) + ")" : "") +
                               " " + golden.name;
      std::string log;
      log = CaptureLog([&] { c.Run(*registration, what); });
      if (!log.empty()) std::fprintf(stderr, "%s printed: %s", what.c_str(), log.c_str());
      ++cases;
    }
    std::printf("%-24s %-22s %2d golden cases\n", test.op, test.variant, cases);
  }
}

void RunRejectTests(const Resolver& resolver, const std::string& dir) {
  for (const RejectTest& test : kRejectTests) {
    const TFLMRegistration* registration = Find(resolver, test.op);
    if (registration == nullptr) continue;
    const auto cases = testing::ReadGoldenCases(dir + "/" + test.golden);
    const GoldenCase* golden = nullptr;
    for (const GoldenCase& candidate : cases) {
      if (candidate.name == test.golden_case) golden = &candidate;
    }
    if (golden == nullptr) {
      Fail(std::string(test.op) + ": no case " + test.golden_case + " in " +
           test.golden);
      continue;
    }
    OpCase c(*golden);
    test.build(c);
    test.breakage(c);
    TfLiteStatus status = kTfLiteOk;
    const std::string log = CaptureLog([&] {
      status = c.Run(*registration, test.op, /*expect_prepare_ok=*/false);
    });
    ++g_checks;
    if (status == kTfLiteOk) {
      Fail(std::string(test.op) + ": Prepare accepted a case that should fail "
           "with \"" + test.message + "\"");
    } else if (log.find(test.message) == std::string::npos) {
      Fail(std::string(test.op) + ": expected \"" + test.message +
           "\" in the MicroPrintf output, got: " + log);
    } else {
      std::printf("rejected: %s", log.c_str());
    }
  }
}

// Every op AddTrainingOps registers has golden and rejection entries: the
// distinct op names of each table are all registered (Find), so a table
// with fewer names than the resolver has registrations misses an op.
// tests/test_tflm_kernels_tflm.py names the missing ones.
void CheckCoverage(Resolver& resolver) {
  std::set<std::string> golden, rejected;
  for (const GoldenTest& test : kGoldenTests) golden.insert(test.op);
  for (const RejectTest& test : kRejectTests) rejected.insert(test.op);
  const size_t registered = resolver.GetRegistrationLength();
  ++g_checks;
  if (golden.size() != registered || rejected.size() != registered) {
    Fail("AddTrainingOps registers " + std::to_string(registered) +
         " ops; kGoldenTests covers " + std::to_string(golden.size()) +
         " and kRejectTests " + std::to_string(rejected.size()) +
         ": every op needs golden and rejection entries");
  }
}

}  // namespace
}  // namespace tflite_tl

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tflm_kernels/testdata";
  static tflite_tl::Resolver resolver;
  if (tflite_tl::tflm::AddTrainingOps(resolver) != kTfLiteOk) {
    std::fprintf(stderr, "AddTrainingOps failed\n");
    return 1;
  }
  tflite_tl::RunGoldenTests(resolver, dir);
  tflite_tl::RunRejectTests(resolver, dir);
  tflite_tl::CheckCoverage(resolver);
  if (tflite_tl::g_failures != 0) {
    std::fprintf(stderr, "%d of %d TFLM kernel check(s) failed\n",
                 tflite_tl::g_failures, tflite_tl::g_checks);
    return 1;
  }
  std::printf("all TFLM kernel tests passed (%d checks)\n", tflite_tl::g_checks);
  return 0;
}
