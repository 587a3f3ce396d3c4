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
  if (arena == nullptr ||
      arena_bytes < spec.train_arena_bytes + spec.predict_arena_bytes) {
    return Fail("arena smaller than train_arena_bytes + predict_arena_bytes");
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

  // Each interpreter gets its own allocator so that its resource variables
  // live in its own part of the arena and can be read and assigned by name.
  tflite::MicroAllocator* train_alloc =
      tflite::MicroAllocator::Create(arena, spec.train_arena_bytes);
  tflite::MicroAllocator* predict_alloc = tflite::MicroAllocator::Create(
      arena + spec.train_arena_bytes, spec.predict_arena_bytes);
  if (train_alloc == nullptr || predict_alloc == nullptr) {
    return Fail("allocator creation");
  }
  train_vars_ =
      tflite::MicroResourceVariables::Create(train_alloc, spec.num_variables);
  predict_vars_ = tflite::MicroResourceVariables::Create(
      predict_alloc, spec.num_predict_variables);
  train_ = new (train_storage_) tflite::MicroInterpreter(
      tflite::GetModel(spec.train_model), resolver_, train_alloc, train_vars_);
  predict_ = new (predict_storage_) tflite::MicroInterpreter(
      tflite::GetModel(spec.predict_model), resolver_, predict_alloc,
      predict_vars_);
  if (train_->AllocateTensors() != kTfLiteOk) {
    return Fail("train model does not fit train_arena_bytes");
  }
  if (predict_->AllocateTensors() != kTfLiteOk) {
    return Fail("predict model does not fit predict_arena_bytes");
  }
  TfLiteTensor* images = train_->input(spec.train_images_input);
  TfLiteTensor* labels = train_->input(spec.train_labels_input);
  TfLiteTensor* image = predict_->input(0);
  if (images == nullptr || images->type != kTfLiteFloat32 ||
      images->bytes != sizeof(float) * spec.batch_size * spec.image_elements ||
      labels == nullptr || labels->type != kTfLiteInt32 ||
      labels->bytes != sizeof(int32_t) * spec.batch_size ||
      image == nullptr || image->type != kTfLiteFloat32 ||
      image->bytes != sizeof(float) * spec.image_elements) {
    return Fail("model inputs differ from the ModelSpec (re-export?)");
  }

  // First Invokes run each model's CALL_ONCE initialisation. The predict
  // model then holds the exported parameters; the train model has taken one
  // step on zeros, which UndoWarmUpStep reverts from the predict model.
  memset(image->data.raw, 0, image->bytes);
  if (predict_->Invoke() != kTfLiteOk) return Fail("predict warm-up");
  memset(images->data.raw, 0, images->bytes);
  memset(labels->data.raw, 0, labels->bytes);
  if (train_->Invoke() != kTfLiteOk) return Fail("train warm-up");
  return UndoWarmUpStep();
}

TfLiteStatus Trainer::UndoWarmUpStep() {
  // Only valid right after the warm-up: the predict model's variables still
  // hold the exported parameters, and optimizer state starts at zero.
  for (int i = 0; i < spec_->num_variables; ++i) {
    const VariableSpec& v = spec_->variables[i];
    if (v.in_predict_model) {
      if (CopyVariable(predict_vars_, train_vars_, v) != kTfLiteOk) {
        return kTfLiteError;
      }
    } else {
      memset(scratch_, 0, v.bytes);
      if (WriteVariable(train_vars_, v, scratch_) != kTfLiteOk) {
        return kTfLiteError;
      }
    }
  }
  steps_ = 0;
  predict_stale_ = false;
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
  predict_stale_ = true;
  return kTfLiteOk;
}

TfLiteStatus Trainer::SyncPredict() {
  for (int i = 0; i < spec_->num_variables; ++i) {
    const VariableSpec& v = spec_->variables[i];
    if (!v.in_predict_model) continue;
    if (CopyVariable(train_vars_, predict_vars_, v) != kTfLiteOk) {
      return kTfLiteError;
    }
  }
  predict_stale_ = false;
  return kTfLiteOk;
}

TfLiteStatus Trainer::Predict(const float* image, float* scores, int* label) {
  if (predict_ == nullptr) return Fail("call Begin first");
  if (predict_stale_ && SyncPredict() != kTfLiteOk) return kTfLiteError;
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

TfLiteStatus Trainer::ReadVariable(tflite::MicroResourceVariables* vars,
                                   const VariableSpec& v, uint8_t* dst) {
  int id = vars->CreateIdIfNoneFound(v.container, v.shared_name);
  if (id < 0) return Fail("unknown variable");
  // Described as v.bytes int8 elements so the size check is in bytes.
  Dims1 dims = {1, {static_cast<int>(v.bytes)}};
  TfLiteEvalTensor tensor = {};
  tensor.type = kTfLiteInt8;
  tensor.dims = reinterpret_cast<TfLiteIntArray*>(&dims);
  tensor.data.raw = reinterpret_cast<char*>(dst);
  return vars->Read(id, &tensor);
}

TfLiteStatus Trainer::WriteVariable(tflite::MicroResourceVariables* vars,
                                    const VariableSpec& v,
                                    const uint8_t* src) {
  int id = vars->CreateIdIfNoneFound(v.container, v.shared_name);
  if (id < 0) return Fail("unknown variable");
  return vars->Assign(id, v.bytes, src);
}

TfLiteStatus Trainer::CopyVariable(tflite::MicroResourceVariables* from,
                                   tflite::MicroResourceVariables* to,
                                   const VariableSpec& v) {
  if (ReadVariable(from, v, scratch_) != kTfLiteOk) return kTfLiteError;
  return WriteVariable(to, v, scratch_);
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
      if (self->ReadVariable(self->train_vars_, v, self->scratch_) !=
          kTfLiteOk) {
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
    if (WriteVariable(train_vars_, v, scratch_) != kTfLiteOk) {
      return TL_PERSIST_IO_ERROR;
    }
    offset += v.bytes;
  }
  predict_stale_ = true;
  if (sequence != nullptr) *sequence = found.sequence;
  return TL_PERSIST_OK;
}

}  // namespace tltl
