// See tl_reselect.h.
#include "tl_reselect.h"

#include <new>
#include <string.h>

#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tltl {
namespace {

TfLiteStatus Fail(const char* what) {
  MicroPrintf("tflite-tl reselect: %s", what);
  return kTfLiteError;
}

// The top `k` of `sums[0..c)`, highest first with ties to the lower index,
// written sorted ascending to `out`. O(k * c), no extra memory: `sums`
// entries already taken are marked by the order of the selection itself.
void TopChannels(const float* sums, int c, int k, int32_t* out) {
  for (int j = 0; j < k; ++j) {
    int best = -1;
    for (int i = 0; i < c; ++i) {
      bool taken = false;
      for (int t = 0; t < j; ++t) taken = taken || out[t] == i;
      if (taken) continue;
      // Strictly greater: among equal sums the first (lowest) index stays.
      if (best < 0 || sums[i] > sums[best]) best = i;
    }
    out[j] = best;
  }
  for (int a = 1; a < k; ++a) {  // insertion sort, k is small
    int32_t v = out[a];
    int b = a - 1;
    for (; b >= 0 && out[b] > v; --b) out[b + 1] = out[b];
    out[b + 1] = v;
  }
}

// The float32 data of the train model's constant tensor `index`, if it holds
// exactly `elements` floats.
const float* ConstantData(const ModelSpec& model, int index, int elements) {
  const tflite::Model* m = tflite::GetModel(model.train_model);
  if (m->subgraphs() == nullptr || m->subgraphs()->size() == 0) {
    return nullptr;
  }
  const tflite::SubGraph* sg = m->subgraphs()->Get(0);
  if (sg->tensors() == nullptr || index < 0 ||
      index >= static_cast<int>(sg->tensors()->size())) {
    return nullptr;
  }
  const tflite::Tensor* t = sg->tensors()->Get(index);
  if (t->type() != tflite::TensorType_FLOAT32 || m->buffers() == nullptr ||
      t->buffer() >= m->buffers()->size()) {
    return nullptr;
  }
  const tflite::Buffer* b = m->buffers()->Get(t->buffer());
  if (b == nullptr || b->data() == nullptr ||
      b->data()->size() != sizeof(float) * static_cast<size_t>(elements)) {
    return nullptr;
  }
  return reinterpret_cast<const float*>(b->data()->data());
}

// Runs fisher.tflite over the samples, adding each layer's sums.
class FisherRun {
 public:
  FisherRun(const ReselectSpec& spec, const OpResolver& resolver,
            uint8_t* arena, size_t arena_bytes)
      : spec_(spec),
        interpreter_(new (storage_) tflite::MicroInterpreter(
            tflite::GetModel(spec.fisher_model), resolver, arena,
            arena_bytes)) {}
  ~FisherRun() { interpreter_->~MicroInterpreter(); }
  FisherRun(const FisherRun&) = delete;
  FisherRun& operator=(const FisherRun&) = delete;

  TfLiteStatus Sums(int image_elements, const SampleSource& samples,
                    int used, float* sums) {
    if (interpreter_->AllocateTensors() != kTfLiteOk) {
      return Fail("fisher model does not fit the arena");
    }
    const int batch = spec_.batch_size;
    TfLiteTensor* images = interpreter_->input(spec_.images_input);
    TfLiteTensor* labels = interpreter_->input(spec_.labels_input);
    if (images == nullptr || labels == nullptr ||
        images->type != kTfLiteFloat32 || labels->type != kTfLiteInt32 ||
        images->bytes != sizeof(float) * batch * image_elements ||
        labels->bytes != sizeof(int32_t) * batch) {
      return Fail("fisher model inputs differ from the tables (re-export?)");
    }
    int offset = 0;
    for (int l = 0; l < spec_.num_layers; ++l) {
      const ReselectLayer& layer = spec_.layers[l];
      TfLiteTensor* out = interpreter_->output(layer.fisher_output);
      if (out == nullptr || out->type != kTfLiteFloat32 ||
          out->bytes != sizeof(float) * layer.channels) {
        return Fail("fisher model outputs differ from the tables");
      }
      for (int c = 0; c < layer.channels; ++c) sums[offset + c] = 0.0f;
      offset += layer.channels;
    }
    for (int first = 0; first < used; first += batch) {
      for (int b = 0; b < batch; ++b) {
        int label = 0;
        const uint8_t* pixels = samples.sample(samples.ctx, first + b, &label);
        if (pixels == nullptr) return Fail("sample not readable");
        float* dst = images->data.f + b * image_elements;
        for (int i = 0; i < image_elements; ++i) {
          dst[i] = pixels[i] * (1.0f / 255.0f);
        }
        labels->data.i32[b] = label;
      }
      if (interpreter_->Invoke() != kTfLiteOk) return Fail("fisher invoke");
      offset = 0;
      for (int l = 0; l < spec_.num_layers; ++l) {
        const ReselectLayer& layer = spec_.layers[l];
        const float* out = interpreter_->output(layer.fisher_output)->data.f;
        for (int c = 0; c < layer.channels; ++c) sums[offset + c] += out[c];
        offset += layer.channels;
      }
    }
    return kTfLiteOk;
  }

 private:
  const ReselectSpec& spec_;
  alignas(tflite::MicroInterpreter) uint8_t
      storage_[sizeof(tflite::MicroInterpreter)];
  tflite::MicroInterpreter* interpreter_;
};

int Elements(const int* shape) {
  return shape[0] * shape[1] * shape[2] * shape[3];
}

// Writes one layer's choice `channels` (K, sorted) into the trainer.
TfLiteStatus WriteChoice(const ModelSpec& model, const ReselectLayer& layer,
                         const int32_t* channels, Trainer& trainer,
                         const ReselectBuffers& buffers) {
  const int c = layer.channels;
  const int k = layer.chosen;
  const int elements = Elements(layer.kernel_shape);
  const size_t trained_bytes = sizeof(float) * (elements / c) * k;
  const VariableSpec* vars = model.variables;
  if (vars[layer.channels_var].bytes != sizeof(int32_t) * k ||
      vars[layer.slots_var].bytes != sizeof(int32_t) * c ||
      vars[layer.trained_var].bytes != trained_bytes ||
      (layer.momentum_var >= 0 &&
       vars[layer.momentum_var].bytes != trained_bytes)) {
    return Fail("variables differ from the tables (re-export?)");
  }
  if (buffers.scratch_bytes < trained_bytes ||
      buffers.scratch_bytes < sizeof(int32_t) * c) {
    return Fail("scratch smaller than a layer's trained slices");
  }
  const float* full = ConstantData(model, layer.full_kernel_tensor, elements);
  if (full == nullptr) return Fail("full kernel not found (re-export?)");
  if (trainer.SetVariable(layer.channels_var,
                          reinterpret_cast<const uint8_t*>(channels)) !=
      kTfLiteOk) {
    return kTfLiteError;
  }
  // channel_slots: channel c's slot in CONCATENATION(trained, full): its
  // position among the chosen ones, else K + c.
  int32_t* slots = reinterpret_cast<int32_t*>(buffers.scratch);
  for (int i = 0; i < c; ++i) slots[i] = k + i;
  for (int j = 0; j < k; ++j) slots[channels[j]] = j;
  if (trainer.SetVariable(layer.slots_var, buffers.scratch) != kTfLiteOk) {
    return kTfLiteError;
  }
  // The trained slices: [outer, C, inner] -> [outer, K, inner].
  int outer = 1;
  int inner = 1;
  for (int d = 0; d < layer.axis; ++d) outer *= layer.kernel_shape[d];
  for (int d = layer.axis + 1; d < 4; ++d) inner *= layer.kernel_shape[d];
  float* trained = reinterpret_cast<float*>(buffers.scratch);
  for (int o = 0; o < outer; ++o) {
    for (int j = 0; j < k; ++j) {
      memcpy(trained + (o * k + j) * inner,
             full + (o * c + channels[j]) * inner, sizeof(float) * inner);
    }
  }
  if (trainer.SetVariable(layer.trained_var, buffers.scratch) != kTfLiteOk) {
    return kTfLiteError;
  }
  if (layer.momentum_var >= 0) {
    memset(buffers.scratch, 0, trained_bytes);
    if (trainer.SetVariable(layer.momentum_var, buffers.scratch) !=
        kTfLiteOk) {
      return kTfLiteError;
    }
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteStatus Reselect(const ReselectSpec& spec, const ModelSpec& model,
                      Trainer& trainer, uint8_t* arena, size_t arena_bytes,
                      const SampleSource& samples,
                      const ReselectBuffers& buffers, int* samples_used) {
  if (spec.batch_size < 1 || samples.count < spec.batch_size) {
    return Fail("fewer samples than one fisher batch");
  }
  if (arena_bytes < spec.arena_bytes) {
    return Fail("arena smaller than ReselectSpec::arena_bytes");
  }
  const int used = samples.count - samples.count % spec.batch_size;
  if (samples_used != nullptr) *samples_used = used;
  trainer.End();
  TfLiteStatus status;
  {
    FisherRun run(spec, trainer.resolver(), arena, arena_bytes);
    status = run.Sums(model.image_elements, samples, used, buffers.sums);
  }
  if (status == kTfLiteOk) {
    int sums = 0;
    int chosen = 0;
    for (int l = 0; l < spec.num_layers; ++l) {
      const ReselectLayer& layer = spec.layers[l];
      TopChannels(buffers.sums + sums, layer.channels, layer.chosen,
                  buffers.channels + chosen);
      sums += layer.channels;
      chosen += layer.chosen;
    }
  }
  // The trainer comes back whatever happened (with the exported choice if
  // the fisher pass failed).
  if (trainer.Begin(model, arena, arena_bytes, buffers.scratch,
                    buffers.scratch_bytes) != kTfLiteOk) {
    return Fail("trainer setup after re-selection");
  }
  if (status != kTfLiteOk) return status;
  int chosen = 0;
  for (int l = 0; l < spec.num_layers; ++l) {
    if (WriteChoice(model, spec.layers[l], buffers.channels + chosen,
                    trainer, buffers) != kTfLiteOk) {
      // A half-written choice would train inconsistent slices.
      trainer.ResetToExported();
      return kTfLiteError;
    }
    chosen += spec.layers[l].chosen;
  }
  return kTfLiteOk;
}

}  // namespace tltl
