// See tl_trainer.h.
#include "tl_trainer.h"

#include <new>
#include <string.h>

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

Trainer::~Trainer() {
  if (train_ != nullptr) train_->~MicroInterpreter();
  if (predict_ != nullptr) predict_->~MicroInterpreter();
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
  if (scratch == nullptr || scratch_bytes < spec.max_variable_bytes) {
    return Fail("scratch smaller than max_variable_bytes");
  }
  spec_ = &spec;
  scratch_ = scratch;
  if (RegisterOps(resolver_) != kTfLiteOk) return Fail("op registration");

  // One allocator (shared head, stacked tails) and one variable table: the
  // predict model's VAR_HANDLEs resolve to the train model's buffers.
  tflite::MicroAllocator* allocator =
      tflite::MicroAllocator::Create(arena, arena_bytes);
  if (allocator == nullptr) return Fail("allocator creation");
  vars_ = tflite::MicroResourceVariables::Create(allocator,
                                                 spec.num_variables);
  if (vars_ == nullptr) return Fail("resource variables do not fit the arena");
  train_ = new (train_storage_) tflite::MicroInterpreter(
      tflite::GetModel(spec.train_model), resolver_, allocator, vars_);
  predict_ = new (predict_storage_) tflite::MicroInterpreter(
      tflite::GetModel(spec.predict_model), resolver_, allocator, vars_);
  if (train_->AllocateTensors() != kTfLiteOk) {
    return Fail("train model does not fit the arena");
  }
  if (predict_->AllocateTensors() != kTfLiteOk) {
    return Fail("predict model does not fit the arena");
  }
  TfLiteTensor* images = train_->input(spec.train_images_input);
  TfLiteTensor* labels = train_->input(spec.train_labels_input);
  TfLiteTensor* image = predict_->input(0);
  TfLiteTensor* scores = predict_->output(0);
  if (images == nullptr || images->type != kTfLiteFloat32 ||
      images->bytes != sizeof(float) * spec.batch_size * spec.image_elements ||
      labels == nullptr || labels->type != kTfLiteInt32 ||
      labels->bytes != sizeof(int32_t) * spec.batch_size ||
      image == nullptr || image->type != kTfLiteFloat32 ||
      image->bytes != sizeof(float) * spec.image_elements ||
      scores == nullptr || scores->type != kTfLiteFloat32 ||
      scores->bytes != sizeof(float) * spec.num_classes) {
    return Fail("model inputs differ from the ModelSpec (re-export?)");
  }

  // The first Invoke of each model runs its CALL_ONCE initialisation; the
  // train model then also takes one step on zeros, undone just below.
  memset(image->data.raw, 0, image->bytes);
  if (predict_->Invoke() != kTfLiteOk) return Fail("predict warm-up");
  memset(images->data.raw, 0, images->bytes);
  memset(labels->data.raw, 0, labels->bytes);
  if (train_->Invoke() != kTfLiteOk) return Fail("train warm-up");
  return ResetToExported();
}

TfLiteStatus Trainer::ResetToExported() {
  if (train_ == nullptr) return Fail("call Begin first");
  // The exported values are the init subgraph's constants, still in flash.
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
  return train_ == nullptr ? nullptr
                           : train_->input(spec_->train_images_input)->data.f;
}

int32_t* Trainer::train_labels() {
  return train_ == nullptr
             ? nullptr
             : train_->input(spec_->train_labels_input)->data.i32;
}

float* Trainer::predict_image() {
  return predict_ == nullptr ? nullptr : predict_->input(0)->data.f;
}

TfLiteStatus Trainer::TrainStep(const float* images, const int32_t* labels,
                                float* loss) {
  if (train_ == nullptr) return Fail("call Begin first");
  TfLiteTensor* in_images = train_->input(spec_->train_images_input);
  TfLiteTensor* in_labels = train_->input(spec_->train_labels_input);
  if (images != in_images->data.f) {
    memcpy(in_images->data.f, images, in_images->bytes);
  }
  if (labels != in_labels->data.i32) {
    memcpy(in_labels->data.i32, labels, in_labels->bytes);
  }
  for (int i = 0; i < spec_->batch_size; ++i) {
    int32_t label = in_labels->data.i32[i];
    if (label < 0 || label >= spec_->num_classes) {
      return Fail("label out of range");
    }
  }
  if (train_->Invoke() != kTfLiteOk) return Fail("train step");
  if (loss != nullptr) *loss = train_->output(0)->data.f[0];
  ++steps_;
  return kTfLiteOk;
}

TfLiteStatus Trainer::Predict(const float* image, float* scores, int* label) {
  if (predict_ == nullptr) return Fail("call Begin first");
  TfLiteTensor* input = predict_->input(0);
  if (image != input->data.f) memcpy(input->data.f, image, input->bytes);
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
    if (self->staged_ != i) {
      if (self->ReadVariable(v, self->scratch_) != kTfLiteOk) {
        return -1;
      }
      self->staged_ = i;
    }
    uint32_t from = offset - start;
    uint32_t n = v.bytes - from;
    if (n > len) n = len;
    memcpy(out, self->scratch_ + from, n);
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
    status = tl_persist_read(storage, &found, offset, scratch_, v.bytes);
    if (status != TL_PERSIST_OK) return status;
    if (WriteVariable(v, scratch_) != kTfLiteOk) return TL_PERSIST_IO_ERROR;
    offset += v.bytes;
  }
  if (sequence != nullptr) *sequence = found.sequence;
  return TL_PERSIST_OK;
}

}  // namespace tltl
