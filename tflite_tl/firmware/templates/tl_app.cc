// See tl_app.h.
#include "tl_app.h"

#include <stdarg.h>
#include <stdio.h>

namespace tltl {

void App::Say(const char* fmt, ...) {
  char line[96];
  va_list args;
  va_start(args, fmt);
  vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  io_.write_line(io_.ctx, line);
}

TfLiteStatus App::Begin(const AppIo& io, uint8_t* arena, size_t arena_bytes,
                        const tl_storage_t* storage) {
  io_ = io;
  storage_ = storage;
  arena_ = arena;
  arena_bytes_ = arena_bytes;
  TfLiteStatus status = trainer_.Begin(kModelSpec, arena, arena_bytes,
                                       scratch_, sizeof(scratch_));
  if (status != kTfLiteOk) {
    Say("error: trainer setup failed (arena %u bytes)",
        static_cast<unsigned>(arena_bytes));
    return status;
  }
  if (storage_ != nullptr) {
    uint32_t seq = 0;
    tl_persist_status_t s = trainer_.Load(storage_, &seq);
    if (s == TL_PERSIST_OK) {
      Say("restored seq=%lu", static_cast<unsigned long>(seq));
    } else if (s == TL_PERSIST_MISMATCH) {
      Say("stored parameters belong to another model; using exported ones");
    }
  }
  Say("ready");
  return kTfLiteOk;
}

int App::ReadNumber() {
  int value = 0;
  for (;;) {
    int c = io_.read_byte(io_.ctx);
    if (c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
    } else if (c == '\n') {
      return value;
    }
  }
}

bool App::ReadImage(uint8_t* dst) {
  for (int i = 0; i < kImageElements; ++i) {
    int c = io_.read_byte(io_.ctx);
    if (c < 0) return false;
    dst[i] = static_cast<uint8_t>(c);
  }
  return true;
}

void App::Train(int epochs) {
  if (num_samples_ < kBatchSize) {
    Say("error: need at least %d samples, have %d", kBatchSize, num_samples_);
    return;
  }
  for (int e = 0; e < epochs; ++e) {
    float sum = 0.0f;
    int steps = 0;
    int skipped = 0;
    // Batches walk the ring buffer from a rotating start so every sample is
    // used; the last partial batch wraps around.
    for (int first = 0; first < num_samples_; first += kBatchSize) {
      int32_t* labels = trainer_.train_labels();
      for (int b = 0; b < kBatchSize; ++b) {
        int k = (first + b + e) % num_samples_;
        trainer_.SetTrainImage(b, samples_[k]);
        labels[b] = labels_[k];
      }
      float loss = 0.0f;
      if (trainer_.TrainStep(&loss) != kTfLiteOk) {
        Say("error: train step failed");
        return;
      }
      // A non-finite loss: the step changed nothing (the graph skips its
      // own update); report it, and average the steps that trained.
      if (trainer_.last_step_skipped()) {
        ++skipped;
        continue;
      }
      sum += loss;
      ++steps;
    }
    if (skipped == 0) {
      Say("epoch %d loss %.4f", e + 1, static_cast<double>(sum / steps));
    } else if (steps > 0) {
      Say("epoch %d loss %.4f skipped %d (loss not finite; lower the "
          "learning rate)", e + 1, static_cast<double>(sum / steps), skipped);
    } else {
      Say("epoch %d loss nan skipped %d (loss not finite; lower the "
          "learning rate)", e + 1, skipped);
    }
  }
}

#if TLTL_RESELECT
namespace {

const uint8_t* StoredSample(void* ctx, int index, int* label) {
  const uint8_t* const* stored = static_cast<const uint8_t* const*>(ctx);
  *label = stored[1][index];
  return stored[0] + index * kImageElements;
}

}  // namespace
#endif

void App::Reselect() {
#if TLTL_RESELECT
  const uint8_t* stored[2] = {samples_[0], labels_};
  SampleSource source = {stored, num_samples_, &StoredSample};
  ReselectBuffers buffers = {reselect_sums_, reselect_channels_, scratch_,
                             sizeof(scratch_)};
  int used = 0;
  if (tltl::Reselect(kReselectSpec, kModelSpec, trainer_, arena_,
                     arena_bytes_, source, buffers, &used) != kTfLiteOk) {
    Say("error: re-selection failed (needs %d samples, have %d)%s",
        kReselectSpec.batch_size, num_samples_,
        trainer_.running() ? "" : "; trainer down");
    return;
  }
  int chosen = 0;
  for (int l = 0; l < kReselectSpec.num_layers; ++l) {
    const ReselectLayer& layer = kReselectSpec.layers[l];
    char line[384];
    int n = snprintf(line, sizeof(line), "reselect %s ", layer.name);
    for (int j = 0; j < layer.chosen && n < static_cast<int>(sizeof(line));
         ++j) {
      n += snprintf(line + n, sizeof(line) - n, j ? ",%ld" : "%ld",
                    static_cast<long>(reselect_channels_[chosen + j]));
    }
    io_.write_line(io_.ctx, line);
    chosen += layer.chosen;
  }
  Say("reselected %d layers on %d samples", kReselectSpec.num_layers, used);
#else
  Say("error: no on-device re-selection in this export (%s)",
      kReselectUnavailable);
#endif
}

void App::Poll() {
  int command = io_.read_byte(io_.ctx);
  switch (command) {
    case 'I': {
      uint8_t raw[kImageElements];
      if (!ReadImage(raw)) return;
      trainer_.SetPredictImage(raw);
      float scores[kNumClasses];
      int label = 0;
      if (trainer_.Predict(scores, &label) != kTfLiteOk) {
        Say("error: predict failed");
        return;
      }
      Say("pred %d %s %.4f", label, kClassNames[label],
          static_cast<double>(scores[label]));
      return;
    }
    case 'L': {
      int label = ReadNumber();
      uint8_t* slot = samples_[next_sample_];
      if (!ReadImage(slot)) return;
      if (label < 0 || label >= kNumClasses) {
        Say("error: label must be 0..%d", kNumClasses - 1);
        return;
      }
      labels_[next_sample_] = static_cast<uint8_t>(label);
      next_sample_ = (next_sample_ + 1) % kMaxSamples;
      if (num_samples_ < kMaxSamples) ++num_samples_;
      Say("ok samples=%d", num_samples_);
      return;
    }
    case 'T': {
      int epochs = ReadNumber();
      Train(epochs > 0 ? epochs : kTrainEpochs);
      return;
    }
    case 'S': {
      if (storage_ == nullptr) {
        Say("error: no storage backend on this board (see tl_storage.h)");
        return;
      }
      uint32_t seq = 0;
      tl_persist_status_t s = trainer_.Save(storage_, &seq);
      if (s == TL_PERSIST_OK) {
        Say("saved seq=%lu", static_cast<unsigned long>(seq));
      } else {
        Say("error: save failed (%d)", static_cast<int>(s));
      }
      return;
    }
    case 'R': {
      if (storage_ == nullptr) {
        Say("error: no storage backend on this board (see tl_storage.h)");
        return;
      }
      uint32_t seq = 0;
      tl_persist_status_t s = trainer_.Load(storage_, &seq);
      if (s == TL_PERSIST_OK) {
        Say("restored seq=%lu", static_cast<unsigned long>(seq));
      } else {
        Say("error: nothing restored (%d)", static_cast<int>(s));
      }
      return;
    }
    case 'F':
      Reselect();
      return;
    case '?':
      Say("model %s: %dx%dx%d -> %d classes, batch %d", kModelName,
          kImageHeight, kImageWidth, kImageChannels, kNumClasses, kBatchSize);
      Say("arena %u bytes, samples %d/%d, steps %d",
          static_cast<unsigned>(kArenaBytes), num_samples_, kMaxSamples,
          trainer_.steps());
#if TLTL_RESELECT
      Say("reselect: yes ('F'; fisher.tflite, %d layers, arena %u bytes)",
          kReselectLayers, static_cast<unsigned>(kReselectArenaBytes));
#else
      Say("reselect: no (%s)", kReselectUnavailable);
#endif
      return;
    default:
      return;  // ignore newlines and noise between commands
  }
}

}  // namespace tltl
