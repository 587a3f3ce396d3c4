// tl_persist storage on an ESP-IDF data partition (ESP-IDF and Arduino-ESP32).
#include "tl_storage.h"

#if defined(ESP_PLATFORM)
#include "esp_partition.h"

static int esp_read(void* ctx, uint32_t offset, void* dst, uint32_t len) {
  return esp_partition_read((const esp_partition_t*)ctx, offset, dst, len) ==
                 ESP_OK ? 0 : -1;
}

static int esp_write(void* ctx, uint32_t offset, const void* src,
                     uint32_t len) {
  return esp_partition_write((const esp_partition_t*)ctx, offset, src, len) ==
                 ESP_OK ? 0 : -1;
}

static int esp_erase(void* ctx, uint32_t offset, uint32_t len) {
  return esp_partition_erase_range((const esp_partition_t*)ctx, offset, len) ==
                 ESP_OK ? 0 : -1;
}

int tl_storage_esp_partition(const char* label, uint32_t slot_bytes,
                             uint32_t sample_bytes, tl_storage_t* out) {
  const esp_partition_t* part = esp_partition_find_first(
      ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, label);
  if (part == NULL || out == NULL) return -1;
  const uint32_t sector = 4096;  // SPI flash erase unit
  uint32_t slot = (slot_bytes + sector - 1) / sector * sector;
  uint32_t samples = (sample_bytes + sector - 1) / sector * sector;
  if (2u * slot + samples > part->size) return -1;
  out->ctx = (void*)part;
  out->slot_size = slot;
  out->program_size = 1;
  out->read = esp_read;
  out->write = esp_write;
  out->erase = esp_erase;
  out->erase_size = sector;
  out->sample_size = samples;
  return 0;
}
#endif  // ESP_PLATFORM
