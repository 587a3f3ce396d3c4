// Board storage backends for tl_persist: each fills a tl_storage_t with two
// slots of `slot_bytes` (rounded up to the flash erase unit), followed by a
// sample area of `sample_bytes` (tl_samples.h; rounded up likewise, 0: none).
#ifndef TFLITE_TL_STORAGE_H_
#define TFLITE_TL_STORAGE_H_

#include "tl_persist.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ESP_PLATFORM)
#define TL_HAVE_STORAGE 1
// Uses the data partition labelled `label` (e.g. "tltl_params" in
// partitions.csv); it must hold two erase-aligned slots and the sample area. Returns 0 on success.
int tl_storage_esp_partition(const char* label, uint32_t slot_bytes,
                             uint32_t sample_bytes, tl_storage_t* out);
#elif defined(ARDUINO_ARCH_MBED)
#define TL_HAVE_STORAGE 1
// Uses the last sectors of the internal flash (mbed FlashIAP), which the
// export's flash fit check keeps free. Returns 0 on success.
int tl_storage_mbed_flash(uint32_t slot_bytes, uint32_t sample_bytes,
                          tl_storage_t* out);
#else
#define TL_HAVE_STORAGE 0
#endif

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLITE_TL_STORAGE_H_
