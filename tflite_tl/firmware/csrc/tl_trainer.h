// On-device training over two TFLM interpreters sharing one arena and the
// trained parameters.
//
// The train model's subgraph 0 is one training step (forward, loss, backward,
// SGD update of resource variables; inputs images + labels, output the loss).
// The predict model is the float forward pass reading resource variables of
// the same names. Both interpreters use one MicroAllocator (TFLM's
// multi-tenant mode: the non-persistent head is shared, so the arena is the
// larger head plus both tails) and one MicroResourceVariables, so the predict
// model reads the very buffers the train step updates: predictions always
// reflect training, with no copy. Save()/Load() persist every variable of the
// train model (parameters and optimizer state) through tl_persist (two slots,
// CRC, sequence numbers: a power cut during Save never loses the last save).
//
// Because the two models share the arena head, fill a model's inputs right
// before its call (the accessors below return its input buffers).
// Memory: the caller's arena (16-byte aligned) and a scratch buffer as large
// as the largest variable (used by Save/Load). No heap use.
#ifndef TFLITE_TL_TRAINER_H_
#define TFLITE_TL_TRAINER_H_

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"
#include "tl_op_resolver.h"
#include "tl_persist.h"

namespace tltl {

// A resource variable as TFLM names it (VAR_HANDLE container + shared_name).
struct VariableSpec {
  const char* container;
  const char* shared_name;
  uint32_t bytes;
  // Index in the train model's buffers() of the exported (initial) value.
  int initial_buffer;
};

// Everything the trainer needs to know about the exported models; the
// generated tl_model_config.h defines one (tltl::kModelSpec).
struct ModelSpec {
  const uint8_t* train_model;
  const uint8_t* predict_model;
  size_t arena_bytes;  // both models, shared head (measured + headroom)
  int train_images_input;  // index among subgraph 0's inputs
  int train_labels_input;
  int batch_size;
  int image_elements;  // height * width * channels
  int num_classes;
  const VariableSpec* variables;
  int num_variables;
  uint32_t max_variable_bytes;
  uint32_t schema_id;
};

class Trainer {
 public:
  Trainer() = default;
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Builds both interpreters in `arena` (at least spec.arena_bytes) and
  // brings every variable to its exported value. `scratch` holds
  // max_variable_bytes. Runs each model once (TFLM initialises variables on
  // the first Invoke) and then undoes the throw-away train step.
  TfLiteStatus Begin(const ModelSpec& spec, uint8_t* arena, size_t arena_bytes,
                     uint8_t* scratch, size_t scratch_bytes);

  // The models' own input buffers. Filling them in place and passing them
  // back to TrainStep/Predict avoids a second copy of the batch in RAM.
  float* train_images();   // batch_size * image_elements floats
  int32_t* train_labels();  // batch_size labels
  float* predict_image();  // image_elements floats

  // One SGD step on batch_size images (float, NHWC, [0, 1]) and labels.
  TfLiteStatus TrainStep(const float* images, const int32_t* labels,
                         float* loss);

  // Scores (logits or probabilities, num_classes floats; may be null) and
  // arg-max label (may be null) of one image.
  TfLiteStatus Predict(const float* image, float* scores, int* label);

  // Persists all variables as a new version in `storage`.
  tl_persist_status_t Save(const tl_storage_t* storage, uint32_t* sequence);

  // Restores the newest valid save. Variables are untouched unless a save of
  // this model (same schema id and size) is found intact.
  tl_persist_status_t Load(const tl_storage_t* storage, uint32_t* sequence);

  // Puts every variable back to its exported value (forgets training).
  TfLiteStatus ResetToExported();

  int steps() const { return steps_; }

 private:
  TfLiteStatus ReadVariable(const VariableSpec& v, uint8_t* dst);
  TfLiteStatus WriteVariable(const VariableSpec& v, const uint8_t* src);
  static int Produce(void* ctx, uint32_t offset, void* dst, uint32_t len);

  const ModelSpec* spec_ = nullptr;
  uint8_t* scratch_ = nullptr;
  OpResolver resolver_;
  tflite::MicroResourceVariables* vars_ = nullptr;
  tflite::MicroInterpreter* train_ = nullptr;
  tflite::MicroInterpreter* predict_ = nullptr;
  alignas(tflite::MicroInterpreter) uint8_t
      train_storage_[sizeof(tflite::MicroInterpreter)];
  alignas(tflite::MicroInterpreter) uint8_t
      predict_storage_[sizeof(tflite::MicroInterpreter)];
  int steps_ = 0;
  int staged_ = -1;  // variable currently held in scratch_ during Save
};

}  // namespace tltl

#endif  // TFLITE_TL_TRAINER_H_
