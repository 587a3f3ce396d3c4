// Serial-protocol application shared by the Arduino sketch and the ESP-IDF
// example: predict, collect labelled samples, train, save and restore.
//
// Commands (one byte, then arguments), answers are text lines:
//   'I' + IMAGE            -> "pred <label> <class name> <score>"
//   'L' <label> '\n' IMAGE -> "ok samples=<n>"   (stores a labelled sample)
//   'T' <epochs> '\n'      -> "epoch <e> loss <mean loss>" per epoch, with
//                             " skipped <n> (...)" when n steps had a
//                             non-finite loss (their update is skipped)
//                             ('T' '\n' alone: kTrainEpochs epochs)
//   'S'                    -> "saved seq=<n>"    (power-cut-safe)
//   'R'                    -> "restored seq=<n>"
//   'F'                    -> "reselect <layer> <c0>,<c1>,..." per layer,
//                             then "reselected <L> layers on <n> samples":
//                             TinyTrain's selection pass (fisher.tflite)
//                             on the stored samples picks each sparse
//                             layer's channels anew; every parameter
//                             restarts from its exported value (a new task)
//   '?'                    -> model, memory and sample summary (where the
//                             samples live: RAM, or flash)
// IMAGE is height*width*channels raw bytes (0..255, NHWC), scaled to [0, 1]
// (float models) or shifted by -128 (int8 models: scale 1/255, zero point
// -128, exact).
//
// Samples live in RAM (a ring of kMaxSamples images) or, when the export
// chose flash (TLTL_SAMPLES_IN_FLASH), in the storage region's sample area
// (tl_samples.h): then RAM holds one batch of images, each train step reads
// its batch from flash, and the samples survive a reset.
#ifndef TFLITE_TL_APP_H_
#define TFLITE_TL_APP_H_

#include <stddef.h>
#include <stdint.h>

#include "tl_model_config.h"
#include "tl_samples.h"
#include "tl_reselect_config.h"
#include "tl_trainer.h"

namespace tltl {

struct AppIo {
  void* ctx;
  int (*read_byte)(void* ctx);  // blocks until a byte arrives
  void (*write_line)(void* ctx, const char* line);
};

class App {
 public:
  // `storage` may be null (no persistence on this board).
  TfLiteStatus Begin(const AppIo& io, uint8_t* arena, size_t arena_bytes,
                     const tl_storage_t* storage);
  // Waits for and executes one command.
  void Poll();

 private:
  bool ReadImage(uint8_t* dst);
  int ReadNumber();
  void Train(int epochs);
  void AddSample(int label, const uint8_t* image);
  // Fills the trainer's batch slot `b` with sample `k` (flash: the k-th
  // oldest, read and CRC-checked).
  bool LoadSample(int b, int k);
  void Reselect();
  void Say(const char* fmt, ...);

  AppIo io_ = {};
  const tl_storage_t* storage_ = nullptr;
  Trainer trainer_;
  uint8_t* arena_ = nullptr;
  size_t arena_bytes_ = 0;
#if TLTL_RESELECT
  float reselect_sums_[kReselectAccumulators];
  int32_t reselect_channels_[kReselectChosen];
#endif
  // Save/Load staging of resource variables (variable tensors need none).
  alignas(16) uint8_t scratch_[kScratchBytes > 0 ? kScratchBytes : 1];
#if TLTL_SAMPLES_IN_FLASH
  // One batch of images; 'L' and 'I' stage their image in batch_[0].
  uint8_t batch_[kBatchSize][kImageElements];
  tl_samples_t store_ = {};
  bool store_ok_ = false;
  uint16_t sample_order_[kSampleSlots];
#else
  uint8_t samples_[kMaxSamples][kImageElements];
  uint8_t labels_[kMaxSamples];
  int next_sample_ = 0;  // ring buffer: the oldest sample is replaced
#endif
  int num_samples_ = 0;
};

}  // namespace tltl

#endif  // TFLITE_TL_APP_H_
