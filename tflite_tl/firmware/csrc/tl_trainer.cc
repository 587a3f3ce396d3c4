// See tl_trainer.h.
#include "tl_trainer.h"

#include <cmath>
#include <new>
#include <string.h>

#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tltl {
namespace {

// A 1-D dims array; TfLiteIntArray ends in a flexible array member.
struct Dims1 {
  int size;
  int data[1];
};

TfLiteStatus Fail(const char* what) {
  MicroPrintf("tflite-tl trainer: %s", what);
  return kTfLiteError;
}

}  // namespace

Trainer::~Trainer() { End(); }

void Trainer::End() {
  if (train_ != nullptr) train_->~MicroInterpreter();
  if (predict_ != nullptr) predict_->~MicroInterpreter();
  train_ = nullptr;
  predict_ = nullptr;
  vars_ = nullptr;  // lived in the arena
}

TfLiteStatus Trainer::SetVariable(int index, const uint8_t* src) {
  if (train_ == nullptr) return Fail("call Begin first");
  if (index < 0 || index >= spec_->num_variables) {
    return Fail("no such variable");
  }
  return WriteVariable(spec_->variables[index], src);
}

TfLiteStatus Trainer::Begin(const ModelSpec& spec, uint8_t* arena,
                            size_t arena_bytes, uint8_t* scratch,
                            size_t scratch_bytes) {
  if (train_ != nullptr) return Fail("Begin called twice");
  if (arena == nullptr || arena_bytes < spec.arena_bytes) {
    return Fail("arena smaller than ModelSpec::arena_bytes");
  }
  if (reinterpret_cast<uintptr_t>(arena) % 16 != 0) {
    return Fail("arena must be 16-byte aligned");
  }
  if (spec.scratch_bytes > 0 &&
      (scratch == nullptr || scratch_bytes < spec.scratch_bytes)) {
    return Fail("scratch smaller than ModelSpec::scratch_bytes");
  }
  spec_ = &spec;
  scratch_ = scratch;
  resource_variables_ = false;
  for (int i = 0; i < spec.num_variables; ++i) {
    if (spec.variables[i].train_tensor < 0) resource_variables_ = true;
  }
  // A resolver takes each op once; a Begin after End keeps the first
  // registration.
  if (!ops_registered_) {
    if (RegisterOps(resolver_) != kTfLiteOk) return Fail("op registration");
    ops_registered_ = true;
  }

  // One allocator (shared head, stacked tails) and one variable table: the
  // predict model's VAR_HANDLEs resolve to the train model's buffers.
  tflite::MicroAllocator* allocator =
      tflite::MicroAllocator::Create(arena, arena_bytes);
  if (allocator == nullptr) return Fail("allocator creation");
  if (resource_variables_) {
    vars_ = tflite::MicroResourceVariables::Create(allocator,
                                                   spec.num_variables);
    if (vars_ == nullptr) {
      return Fail("resource variables do not fit the arena");
    }
  }
  train_ = new (train_storage_) Interpreter(
      tflite::GetModel(spec.train_model), resolver_, allocator, vars_);
  predict_ = new (predict_storage_) Interpreter(
      tflite::GetModel(spec.predict_model), resolver_, allocator, vars_);
  if (train_->AllocateTensors() != kTfLiteOk) {
    return Fail("train model does not fit the arena");
  }
  if (predict_->AllocateTensors() != kTfLiteOk) {
    return Fail("predict model does not fit the arena");
  }
  if (CheckInputs() != kTfLiteOk) return kTfLiteError;
  if (ShareVariableTensors() != kTfLiteOk) return kTfLiteError;
  if (resource_variables_) {
    // The first Invoke of each model runs its CALL_ONCE initialisation; the
    // train model then also takes one step on zeros, undone just below.
    TfLiteTensor* image = predict_->input(0);
    TfLiteTensor* images = train_->input(spec.train_images_input);
    TfLiteTensor* labels = train_->input(spec.train_labels_input);
    memset(image->data.raw, 0, image->bytes);
    if (predict_->Invoke() != kTfLiteOk) return Fail("predict warm-up");
    memset(images->data.raw, 0, images->bytes);
    memset(labels->data.raw, 0, labels->bytes);
    if (train_->Invoke() != kTfLiteOk) return Fail("train warm-up");
  }
  return ResetToExported();
}

TfLiteStatus Trainer::CheckInputs() {
  const ModelSpec& spec = *spec_;
  TfLiteTensor* images = train_->input(spec.train_images_input);
  TfLiteTensor* labels = train_->input(spec.train_labels_input);
  TfLiteTensor* image = predict_->input(0);
  TfLiteTensor* scores = predict_->output(0);
  TfLiteTensor* loss = train_->output(0);
  if (images == nullptr || image == nullptr || labels == nullptr ||
      scores == nullptr || loss == nullptr) {
    return Fail("model inputs differ from the ModelSpec (re-export?)");
  }
  images_int8_ = images->type == kTfLiteInt8;
  const size_t pixel = images_int8_ ? sizeof(int8_t) : sizeof(float);
  if ((images->type != kTfLiteFloat32 && !images_int8_) ||
      image->type != images->type ||
      images->bytes != pixel * spec.batch_size * spec.image_elements ||
      image->bytes != pixel * spec.image_elements ||
      labels->type != kTfLiteInt32 ||
      labels->bytes != sizeof(int32_t) * spec.batch_size ||
      scores->type != kTfLiteFloat32 ||
      scores->bytes != sizeof(float) * spec.num_classes ||
      loss->type != kTfLiteFloat32) {
    return Fail("model inputs differ from the ModelSpec (re-export?)");
  }
  return kTfLiteOk;
}

uint8_t* Trainer::TensorData(const VariableSpec& v) {
  if (v.train_tensor < 0) return nullptr;
  TfLiteEvalTensor* t = train_->EvalTensor(v.train_tensor);
  return t == nullptr ? nullptr : reinterpret_cast<uint8_t*>(t->data.raw);
}

TfLiteStatus Trainer::ShareVariableTensors() {
  for (int i = 0; i < spec_->num_variables; ++i) {
    const VariableSpec& v = spec_->variables[i];
    if (v.train_tensor < 0) continue;
    TfLiteEvalTensor* t = train_->EvalTensor(v.train_tensor);
    size_t bytes = 0;
    if (t == nullptr || t->data.raw == nullptr ||
        tflite::TfLiteEvalTensorByteLength(t, &bytes) != kTfLiteOk ||
        bytes != v.bytes) {
      return Fail("train-model variable tensor differs from the ModelSpec");
    }
    if (v.predict_tensor < 0) continue;
    TfLiteEvalTensor* p = predict_->EvalTensor(v.predict_tensor);
    size_t predict_bytes = 0;
    if (p == nullptr || p->type != t->type ||
        tflite::TfLiteEvalTensorByteLength(p, &predict_bytes) != kTfLiteOk ||
        predict_bytes != v.bytes) {
      return Fail("predict-model variable tensor differs from the ModelSpec");
    }
    // Kernels read their tensors' data pointers at every Invoke, so from now
    // on the predict model reads (and never writes) the trained buffer.
    p->data.raw = t->data.raw;
  }
  return kTfLiteOk;
}

TfLiteStatus Trainer::ResetToExported() {
  if (train_ == nullptr) return Fail("call Begin first");
  // The exported values are still in flash: the init subgraph's constants
  // (resource variables) or the variable tensors' own buffers.
  const tflite::Model* model = tflite::GetModel(spec_->train_model);
  for (int i = 0; i < spec_->num_variables; ++i) {
    const VariableSpec& v = spec_->variables[i];
    const tflite::Buffer* buffer = model->buffers()->Get(v.initial_buffer);
    if (buffer == nullptr || buffer->data() == nullptr ||
        buffer->data()->size() != v.bytes) {
      return Fail("exported value of a variable not found (re-export?)");
    }
    if (WriteVariable(v, buffer->data()->data()) != kTfLiteOk) {
      return kTfLiteError;
    }
  }
  steps_ = 0;
  return kTfLiteOk;
}

float* Trainer::train_images() {
  return train_ == nullptr || images_int8_
             ? nullptr
             : train_->input(spec_->train_images_input)->data.f;
}

int8_t* Trainer::train_images_int8() {
  return train_ == nullptr || !images_int8_
             ? nullptr
             : train_->input(spec_->train_images_input)->data.int8;
}

int32_t* Trainer::train_labels() {
  return train_ == nullptr
             ? nullptr
             : train_->input(spec_->train_labels_input)->data.i32;
}

float* Trainer::predict_image() {
  return predict_ == nullptr || images_int8_ ? nullptr
                                             : predict_->input(0)->data.f;
}

int8_t* Trainer::predict_image_int8() {
  return predict_ == nullptr || !images_int8_ ? nullptr
                                              : predict_->input(0)->data.int8;
}

namespace {

void ConvertPixels(const uint8_t* pixels, int n, bool to_int8, void* dst) {
  if (to_int8) {
    int8_t* out = static_cast<int8_t*>(dst);
    for (int i = 0; i < n; ++i) out[i] = static_cast<int8_t>(pixels[i] - 128);
  } else {
    float* out = static_cast<float*>(dst);
    for (int i = 0; i < n; ++i) out[i] = pixels[i] * (1.0f / 255.0f);
  }
}

}  // namespace

void Trainer::SetTrainImage(int index, const uint8_t* pixels) {
  if (train_ == nullptr || index < 0 || index >= spec_->batch_size) return;
  TfLiteTensor* t = train_->input(spec_->train_images_input);
  const int n = spec_->image_elements;
  void* dst = images_int8_ ? static_cast<void*>(t->data.int8 + index * n)
                           : static_cast<void*>(t->data.f + index * n);
  ConvertPixels(pixels, n, images_int8_, dst);
}

void Trainer::SetPredictImage(const uint8_t* pixels) {
  if (predict_ == nullptr) return;
  ConvertPixels(pixels, spec_->image_elements, images_int8_,
                predict_->input(0)->data.raw);
}

TfLiteStatus Trainer::TrainStep(const float* images, const int32_t* labels,
                                float* loss) {
  if (train_ == nullptr) return Fail("call Begin first");
  if (images_int8_) return Fail("this model takes int8 images");
  TfLiteTensor* in_images = train_->input(spec_->train_images_input);
  TfLiteTensor* in_labels = train_->input(spec_->train_labels_input);
  if (images != in_images->data.f) {
    memcpy(in_images->data.f, images, in_images->bytes);
  }
  if (labels != in_labels->data.i32) {
    memcpy(in_labels->data.i32, labels, in_labels->bytes);
  }
  return TrainStep(loss);
}

TfLiteStatus Trainer::TrainStep(const int8_t* images, const int32_t* labels,
                                float* loss) {
  if (train_ == nullptr) return Fail("call Begin first");
  if (!images_int8_) return Fail("this model takes float images");
  TfLiteTensor* in_images = train_->input(spec_->train_images_input);
  TfLiteTensor* in_labels = train_->input(spec_->train_labels_input);
  if (images != in_images->data.int8) {
    memcpy(in_images->data.int8, images, in_images->bytes);
  }
  if (labels != in_labels->data.i32) {
    memcpy(in_labels->data.i32, labels, in_labels->bytes);
  }
  return TrainStep(loss);
}

TfLiteStatus Trainer::TrainStep(float* loss) {
  if (train_ == nullptr) return Fail("call Begin first");
  const int32_t* labels = train_->input(spec_->train_labels_input)->data.i32;
  for (int i = 0; i < spec_->batch_size; ++i) {
    if (labels[i] < 0 || labels[i] >= spec_->num_classes) {
      return Fail("label out of range");
    }
  }
  if (train_->Invoke() != kTfLiteOk) return Fail("train step");
  const float value = train_->output(0)->data.f[0];
  if (loss != nullptr) *loss = value;
  ++steps_;
  // The graph itself kept every variable as it was (both kernel flavors
  // guard their updates on a finite loss); count the step as skipped.
  last_step_skipped_ = !std::isfinite(value);
  if (last_step_skipped_) ++skipped_steps_;
  return kTfLiteOk;
}

TfLiteStatus Trainer::Predict(const float* image, float* scores, int* label) {
  if (predict_ == nullptr) return Fail("call Begin first");
  if (images_int8_) return Fail("this model takes int8 images");
  TfLiteTensor* input = predict_->input(0);
  if (image != input->data.f) memcpy(input->data.f, image, input->bytes);
  return Predict(scores, label);
}

TfLiteStatus Trainer::Predict(const int8_t* image, float* scores,
                              int* label) {
  if (predict_ == nullptr) return Fail("call Begin first");
  if (!images_int8_) return Fail("this model takes float images");
  TfLiteTensor* input = predict_->input(0);
  if (image != input->data.int8) {
    memcpy(input->data.int8, image, input->bytes);
  }
  return Predict(scores, label);
}

TfLiteStatus Trainer::Predict(float* scores, int* label) {
  if (predict_ == nullptr) return Fail("call Begin first");
  if (predict_->Invoke() != kTfLiteOk) return Fail("predict");
  const float* out = predict_->output(0)->data.f;
  int best = 0;
  for (int k = 0; k < spec_->num_classes; ++k) {
    if (scores != nullptr) scores[k] = out[k];
    if (out[k] > out[best]) best = k;
  }
  if (label != nullptr) *label = best;
  return kTfLiteOk;
}

TfLiteStatus Trainer::ReadVariable(const VariableSpec& v, uint8_t* dst) {
  if (v.train_tensor >= 0) {
    const uint8_t* data = TensorData(v);
    if (data == nullptr) return Fail("unknown variable tensor");
    memcpy(dst, data, v.bytes);
    return kTfLiteOk;
  }
  int id = vars_->CreateIdIfNoneFound(v.container, v.shared_name);
  if (id < 0) return Fail("unknown variable");
  // Described as v.bytes int8 elements so the size check is in bytes.
  Dims1 dims = {1, {static_cast<int>(v.bytes)}};
  TfLiteEvalTensor tensor = {};
  tensor.type = kTfLiteInt8;
  tensor.dims = reinterpret_cast<TfLiteIntArray*>(&dims);
  tensor.data.raw = reinterpret_cast<char*>(dst);
  return vars_->Read(id, &tensor);
}

TfLiteStatus Trainer::WriteVariable(const VariableSpec& v,
                                    const uint8_t* src) {
  if (v.train_tensor >= 0) {
    uint8_t* data = TensorData(v);
    if (data == nullptr) return Fail("unknown variable tensor");
    if (data != src) memcpy(data, src, v.bytes);
    return kTfLiteOk;
  }
  int id = vars_->CreateIdIfNoneFound(v.container, v.shared_name);
  if (id < 0) return Fail("unknown variable");
  return vars_->Assign(id, v.bytes, src);
}

int Trainer::Produce(void* ctx, uint32_t offset, void* dst, uint32_t len) {
  // Streams the concatenated variables to tl_persist, one variable at a time
  // through the scratch buffer.
  Trainer* self = static_cast<Trainer*>(ctx);
  uint8_t* out = static_cast<uint8_t*>(dst);
  while (len > 0) {
    uint32_t start = 0;
    int i = 0;
    for (; i < self->spec_->num_variables; ++i) {
      uint32_t bytes = self->spec_->variables[i].bytes;
      if (offset < start + bytes) break;
      start += bytes;
    }
    if (i == self->spec_->num_variables) return -1;
    const VariableSpec& v = self->spec_->variables[i];
    // A variable tensor is read in place; a resource variable only through
    // a copy, staged in scratch_ once per variable.
    const uint8_t* data = self->TensorData(v);
    if (data == nullptr) {
      if (self->staged_ != i) {
        if (self->ReadVariable(v, self->scratch_) != kTfLiteOk) {
          return -1;
        }
        self->staged_ = i;
      }
      data = self->scratch_;
    }
    uint32_t from = offset - start;
    uint32_t n = v.bytes - from;
    if (n > len) n = len;
    memcpy(out, data + from, n);
    out += n;
    offset += n;
    len -= n;
  }
  return 0;
}

tl_persist_status_t Trainer::Save(const tl_storage_t* storage,
                                  uint32_t* sequence) {
  if (train_ == nullptr) return TL_PERSIST_BAD_ARGUMENT;
  uint32_t total = 0;
  for (int i = 0; i < spec_->num_variables; ++i) {
    total += spec_->variables[i].bytes;
  }
  staged_ = -1;
  tl_persist_status_t status = tl_persist_save_stream(
      storage, spec_->schema_id, total, &Trainer::Produce, this, sequence);
  staged_ = -1;
  return status;
}

tl_persist_status_t Trainer::Load(const tl_storage_t* storage,
                                  uint32_t* sequence) {
  if (train_ == nullptr) return TL_PERSIST_BAD_ARGUMENT;
  tl_persist_found_t found;
  tl_persist_status_t status = tl_persist_find(storage, &found);
  if (status != TL_PERSIST_OK) return status;
  uint32_t total = 0;
  for (int i = 0; i < spec_->num_variables; ++i) {
    total += spec_->variables[i].bytes;
  }
  if (found.schema_id != spec_->schema_id || found.payload_len != total) {
    return TL_PERSIST_MISMATCH;
  }
  uint32_t offset = 0;
  for (int i = 0; i < spec_->num_variables; ++i) {
    const VariableSpec& v = spec_->variables[i];
    // The save's CRCs are checked already: a variable tensor is read
    // straight into place.
    uint8_t* data = TensorData(v);
    uint8_t* dst = data != nullptr ? data : scratch_;
    status = tl_persist_read(storage, &found, offset, dst, v.bytes);
    if (status != TL_PERSIST_OK) return status;
    if (WriteVariable(v, dst) != kTfLiteOk) return TL_PERSIST_IO_ERROR;
    offset += v.bytes;
  }
  if (sequence != nullptr) *sequence = found.sequence;
  return TL_PERSIST_OK;
}

}  // namespace tltl
