// ESP-IDF example for $name: the serial protocol of tl_app.h on the console
// UART. The arena goes to PSRAM when CONFIG_TLTL_ARENA_IN_PSRAM is set.
#include <stdio.h>

#include "esp_heap_caps.h"
#include "sdkconfig.h"
#include "tl_app.h"
#include "tl_storage.h"

namespace {

tltl::App g_app;
tl_storage_t g_storage;

int ReadByte(void*) {
  int c;
  while ((c = getchar()) == EOF) {
  }
  return c;
}

void WriteLine(void*, const char* line) {
  printf("%s\n", line);
  fflush(stdout);
}

}  // namespace

extern "C" void app_main(void) {
#if CONFIG_TLTL_ARENA_IN_PSRAM
  const uint32_t caps = MALLOC_CAP_SPIRAM;
#else
  const uint32_t caps = MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT;
#endif
  uint8_t* arena = static_cast<uint8_t*>(
      heap_caps_aligned_alloc(16, tltl::kArenaBytes, caps));
  if (arena == nullptr) {
    printf("error: cannot allocate the %u-byte arena\n",
           static_cast<unsigned>(tltl::kArenaBytes));
    return;
  }
  const tl_storage_t* storage = nullptr;
  if (tl_storage_esp_partition("$partition", tltl::kStorageSlotBytes,
                               tltl::kSampleAreaBytes, &g_storage) == 0) {
    storage = &g_storage;
  } else {
    printf("no '$partition' data partition: training is lost at reset\n");
  }
  tltl::AppIo io = {nullptr, ReadByte, WriteLine};
  if (g_app.Begin(io, arena, tltl::kArenaBytes, storage) != kTfLiteOk) return;
  for (;;) g_app.Poll();
}
