// tl_persist storage in the last sectors of internal flash on Arduino mbed
// boards (Nano 33 BLE, Portenta H7), through mbed::FlashIAP.
#include "tl_storage.h"

#if defined(ARDUINO_ARCH_MBED) && !defined(ESP_PLATFORM)
#include "FlashIAP.h"

namespace {

mbed::FlashIAP g_flash;
uint32_t g_base = 0;

int MbedRead(void*, uint32_t offset, void* dst, uint32_t len) {
  return g_flash.read(dst, g_base + offset, len) == 0 ? 0 : -1;
}

int MbedWrite(void*, uint32_t offset, const void* src, uint32_t len) {
  return g_flash.program(src, g_base + offset, len) == 0 ? 0 : -1;
}

int MbedErase(void*, uint32_t offset, uint32_t len) {
  return g_flash.erase(g_base + offset, len) == 0 ? 0 : -1;
}

}  // namespace

extern "C" int tl_storage_mbed_flash(uint32_t slot_bytes, uint32_t sample_bytes,
                                     tl_storage_t* out) {
  if (out == nullptr || g_flash.init() != 0) return -1;
  const uint32_t end = g_flash.get_flash_start() + g_flash.get_flash_size();
  const uint32_t sector = g_flash.get_sector_size(end - 1);
  const uint32_t page = g_flash.get_page_size();
  if (page == 0 || page > TL_PERSIST_MAX_PROGRAM_BYTES || sector == 0) {
    return -1;
  }
  const uint32_t slot = (slot_bytes + sector - 1) / sector * sector;
  // The sample area follows the slots (both erase-aligned): the whole
  // region ends at the end of the flash.
  const uint32_t samples = (sample_bytes + sector - 1) / sector * sector;
  g_base = end - 2 * slot - samples;
  out->ctx = nullptr;
  out->slot_size = slot;
  out->program_size = page;
  out->read = MbedRead;
  out->write = MbedWrite;
  out->erase = MbedErase;
  out->erase_size = sector;
  out->sample_size = samples;
  return 0;
}
#endif  // ARDUINO_ARCH_MBED
