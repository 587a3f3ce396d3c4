// On-device training over two TFLM interpreters sharing one arena and the
// trained parameters.
//
// The train model's subgraph 0 is one training step (forward, loss, backward,
// SGD update of the parameters; inputs images + labels, output the loss).
// The predict model is the forward pass reading the same parameters. Both
// interpreters use one MicroAllocator (TFLM's multi-tenant mode: the
// non-persistent head is shared, so the arena is the larger head plus both
// tails), and the predict model reads the very buffers the train step
// updates: predictions always reflect training, with no copy. The parameters
// live in one of two ways, per exported model (ModelSpec):
//  - builtin flavor: resource variables (VAR_HANDLE). Both interpreters share
//    one MicroResourceVariables, so the predict model's VAR_HANDLEs resolve
//    to the train model's buffers. TFLM initialises them in the first Invoke
//    (CALL_ONCE), which Begin runs and undoes.
//  - kernel flavor: variable tensors (is_variable) of the train model, which
//    the TL_* update kernels write in place. Begin copies their exported
//    values from the flatbuffer in, and points the predict model's tensors of
//    the same names at the train model's buffers (the predict model's own
//    variable buffers stay unused; the measured arena counts them).
// Save()/Load() persist every variable of the train model (parameters and
// optimizer state) through tl_persist (two slots, CRC, sequence numbers: a
// power cut during Save never loses the last save).
//
// Images are float (pixel / 255) or int8 (pixel - 128: scale 1/255, zero
// point -128), as the models' inputs say; SetTrainImage/SetPredictImage
// convert 8-bit pixels to either.
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

// One saved variable: a resource variable as TFLM names it (VAR_HANDLE
// container + shared_name), or a variable tensor (train_tensor >= 0; its
// name in shared_name).
struct VariableSpec {
  const char* container;
  const char* shared_name;
  uint32_t bytes;
  // Index in the train model's buffers() of the exported (initial) value.
  int initial_buffer;
  // Variable tensor in the train model's subgraph 0, -1 for a resource
  // variable.
  int train_tensor;
  // The predict model's tensor of the same name (-1: it does not read it).
  int predict_tensor;
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
  uint32_t scratch_bytes;  // Save/Load staging (0: variable tensors only)
  uint32_t schema_id;
};

// A MicroInterpreter that exposes subgraph 0's eval tensors as its kernels
// see them (variable tensors are persistent, so their buffers stay put).
class Interpreter : public tflite::MicroInterpreter {
 public:
  using tflite::MicroInterpreter::MicroInterpreter;
  TfLiteEvalTensor* EvalTensor(int index) {
    return context().GetEvalTensor(&context(), index);
  }
};

class Trainer {
 public:
  Trainer() = default;
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Builds both interpreters in `arena` (at least spec.arena_bytes) and
  // brings every variable to its exported value. `scratch` holds
  // spec.scratch_bytes (may be null when that is 0). With resource
  // variables, runs each model once (TFLM initialises them on the first
  // Invoke) and then undoes the throw-away train step.
  TfLiteStatus Begin(const ModelSpec& spec, uint8_t* arena, size_t arena_bytes,
                     uint8_t* scratch, size_t scratch_bytes);

  // True when both models take int8 images (else float).
  bool images_int8() const { return images_int8_; }

  // The models' own input buffers (null for the other image type). Filling
  // them in place and passing them back to TrainStep/Predict avoids a
  // second copy of the batch in RAM.
  float* train_images();    // batch_size * image_elements floats
  int8_t* train_images_int8();
  int32_t* train_labels();  // batch_size labels
  float* predict_image();   // image_elements floats
  int8_t* predict_image_int8();

  // Converts 8-bit pixels (NHWC) into image `index` of the train batch, or
  // into the predict model's input, whatever their type.
  void SetTrainImage(int index, const uint8_t* pixels);
  void SetPredictImage(const uint8_t* pixels);

  // One SGD step on batch_size images (NHWC; float in [0, 1] or int8) and
  // labels; the variant without images trains on the inputs as they are.
  // A step whose loss is not finite (NaN or inf: a learning rate too large
  // for the data) changes no variable, because the exported graph skips
  // its own update; it still returns kTfLiteOk, with the loss, and
  // last_step_skipped() tells.
  TfLiteStatus TrainStep(const float* images, const int32_t* labels,
                         float* loss);
  TfLiteStatus TrainStep(const int8_t* images, const int32_t* labels,
                         float* loss);
  TfLiteStatus TrainStep(float* loss);

  // Scores (logits or probabilities, num_classes floats; may be null) and
  // arg-max label (may be null) of one image (or of the input as it is).
  TfLiteStatus Predict(const float* image, float* scores, int* label);
  TfLiteStatus Predict(const int8_t* image, float* scores, int* label);
  TfLiteStatus Predict(float* scores, int* label);

  // Persists all variables as a new version in `storage`.
  tl_persist_status_t Save(const tl_storage_t* storage, uint32_t* sequence);

  // Restores the newest valid save. Variables are untouched unless a save of
  // this model (same schema id and size) is found intact.
  tl_persist_status_t Load(const tl_storage_t* storage, uint32_t* sequence);

  // Puts every variable back to its exported value (forgets training).
  TfLiteStatus ResetToExported();

  // Destroys both interpreters; the arena is free until the next Begin
  // (which starts from the exported values again). Re-selection
  // (tl_reselect.h) runs another model in the arena in between.
  void End();
  bool running() const { return train_ != nullptr; }

  // Overwrites variable `index` of ModelSpec::variables (its bytes from
  // `src`).
  TfLiteStatus SetVariable(int index, const uint8_t* src);

  // The op resolver Begin registered (it also covers fisher.tflite's ops
  // when the export ships on-device re-selection).
  const OpResolver& resolver() const { return resolver_; }

  int steps() const { return steps_; }
  // Steps (of steps()) whose non-finite loss skipped the update.
  int skipped_steps() const { return skipped_steps_; }
  bool last_step_skipped() const { return last_step_skipped_; }

 private:
  TfLiteStatus ReadVariable(const VariableSpec& v, uint8_t* dst);
  TfLiteStatus WriteVariable(const VariableSpec& v, const uint8_t* src);
  // The train model's buffer of a variable tensor (null for a resource
  // variable).
  uint8_t* TensorData(const VariableSpec& v);
  TfLiteStatus ShareVariableTensors();
  TfLiteStatus CheckInputs();
  static int Produce(void* ctx, uint32_t offset, void* dst, uint32_t len);

  const ModelSpec* spec_ = nullptr;
  uint8_t* scratch_ = nullptr;
  OpResolver resolver_;
  tflite::MicroResourceVariables* vars_ = nullptr;
  Interpreter* train_ = nullptr;
  Interpreter* predict_ = nullptr;
  alignas(Interpreter) uint8_t train_storage_[sizeof(Interpreter)];
  alignas(Interpreter) uint8_t predict_storage_[sizeof(Interpreter)];
  bool ops_registered_ = false;
  bool images_int8_ = false;
  bool resource_variables_ = false;
  int steps_ = 0;
  int skipped_steps_ = 0;
  bool last_step_skipped_ = false;
  int staged_ = -1;  // variable currently held in scratch_ during Save
};

}  // namespace tltl

#endif  // TFLITE_TL_TRAINER_H_
