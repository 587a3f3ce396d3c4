// On-device re-selection of the trained channels (TinyTrain's selection
// pass on the board, without a host or a re-export).
//
// fisher.tflite runs the forward and backward pass of a batch of support
// samples and returns, per candidate layer, S_c = sum_n (sum_hw a*g)^2 for
// each channel c. Reselect() runs it over the stored samples (float sums),
// ranks each channel-sparse layer's channels by S (the Fisher potential
// S / 2N orders them alike; highest first, ties to the lower index, as
// tflite_tl.sparse.criteria.rank_channels('fisher') does), keeps the top K
// (K, and so every shape and the arena, stay as exported), sorts them, and
// writes them into the train model's variables: <layer>/channels,
// <layer>/channel_slots, <layer>/kernel_trained (the full kernel's slices of
// the new channels, copied from the train model's constant) and a zeroed
// momentum. The generated tl_reselect_config.h gives the tables
// (tltl::kReselectSpec).
//
// The arena is shared: Reselect() tears the trainer's interpreters down,
// runs fisher.tflite alone in the whole arena, and builds them again. The
// resource variables then restart from their exported values, so a
// re-selection starts a new task from the exported parameters (and the
// fisher model scores the exported weights, its constants, too).
#ifndef TFLITE_TL_RESELECT_H_
#define TFLITE_TL_RESELECT_H_

#include <stddef.h>
#include <stdint.h>

#include "tl_trainer.h"

namespace tltl {

// One channel-sparse layer of the train model.
struct ReselectLayer {
  const char* name;
  int fisher_output;  // index among fisher.tflite's outputs
  int channels;       // C: channels on the chosen axis
  int chosen;         // K: channels that train
  int axis;           // the channels' axis in the kernel (TF layout)
  int kernel_shape[4];
  int full_kernel_tensor;  // train model's constant (subgraph 0)
  // Indices in ModelSpec::variables; momentum_var -1 without momentum.
  int channels_var;
  int slots_var;
  int trained_var;
  int momentum_var;
};

struct ReselectSpec {
  const uint8_t* fisher_model;
  size_t arena_bytes;  // fisher.tflite alone (measured + headroom)
  int images_input;    // index among subgraph 0's inputs
  int labels_input;
  int batch_size;
  const ReselectLayer* layers;
  int num_layers;
};

// The stored samples: 8-bit pixels (NHWC) and label of sample `index`.
struct SampleSource {
  void* ctx;
  int count;
  const uint8_t* (*sample)(void* ctx, int index, int* label);
};

// Where Reselect() works and what it reports.
struct ReselectBuffers {
  float* sums;        // sum of the layers' C floats
  int32_t* channels;  // sum of the layers' K: the new choice, per layer
  uint8_t* scratch;   // the trainer's scratch (ModelSpec::scratch_bytes)
  size_t scratch_bytes;
};

// Re-selects on the first count - count % batch_size samples (at least one
// batch). On success the trainer runs again with the new channels and the
// exported values of every other variable. On failure it still tries to
// bring the trainer back (with the exported choice); trainer.running()
// tells whether it did.
TfLiteStatus Reselect(const ReselectSpec& spec, const ModelSpec& model,
                      Trainer& trainer, uint8_t* arena, size_t arena_bytes,
                      const SampleSource& samples,
                      const ReselectBuffers& buffers, int* samples_used);

}  // namespace tltl

#endif  // TFLITE_TL_RESELECT_H_
