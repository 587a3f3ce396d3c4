// Labelled training samples kept in flash: a ring of CRC-checked records in
// the storage region's sample area (after the two tl_persist slots).
//
// The area is split into blocks of whole erase units; a block holds
// `records_per_block` records and no record straddles two blocks. Records
// are written in order; writing the first record of a block erases that
// block first, which drops the oldest records (those the block held). So
// every erase unit is erased once per lap of the ring: after S samples
// collected, each unit has seen about S / num_slots erase cycles (NOR flash
// endures 10,000 (nRF52840) to 100,000 (ESP32 SPI flash) cycles).
//
// Record layout (little-endian, offsets within the record):
//   0  u32 magic "TLS1"      12 .. 27 reserved (0xFF)
//   4  u32 sequence          28 u32 crc (CRC-32 of bytes 0..27 and image)
//   8  u32 label             32 image bytes, then 0xFF up to record_bytes
// The image is programmed first and the 32-byte header last, so a power cut
// during an append leaves that record failing its CRC: at most the sample
// being written is lost. A record that is neither valid nor erased (torn) is
// skipped at mount; the next append goes to the next erased record.
//
// Framework-free C (C99 / C++11), like tl_persist.c.
#ifndef TFLITE_TL_SAMPLES_H_
#define TFLITE_TL_SAMPLES_H_

#include <stddef.h>
#include <stdint.h>

#include "tl_persist.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TL_SAMPLES_MAGIC 0x31534c54u /* "TLS1" read as little-endian u32 */
#define TL_SAMPLES_HEADER_BYTES 32u

typedef struct {
  const tl_storage_t* storage;
  uint32_t base;               // offset of the sample area in the storage
  uint32_t image_bytes;
  uint32_t record_bytes;       // header + image, a multiple of 32
  uint32_t block_bytes;        // whole erase units
  uint32_t records_per_block;
  uint32_t num_blocks;
  uint32_t num_slots;          // records_per_block * num_blocks
  uint16_t* order;             // valid slots, oldest first (caller's array)
  uint32_t count;              // valid records
  uint32_t next_slot;          // where the next append goes
  uint32_t next_sequence;
} tl_samples_t;

// Bytes of a record holding an image of `image_bytes`.
uint32_t tl_samples_record_bytes(uint32_t image_bytes);

// Bytes of a sample area that keeps at least `min_samples` records through
// a wrap, with erase units of `erase_size` (one block more than they need:
// wrapping erases a whole block).
uint32_t tl_samples_area_bytes(uint32_t image_bytes, uint32_t erase_size,
                               uint32_t min_samples);

// Scans the sample area of `storage` (storage->sample_size bytes from
// 2 * storage->slot_size, erase unit storage->erase_size) and finds the
// valid records. `order` must hold `order_capacity` entries; the ring uses
// at most that many slots. TL_PERSIST_BAD_ARGUMENT if the area holds fewer
// than two blocks.
tl_persist_status_t tl_samples_mount(tl_samples_t* store,
                                     const tl_storage_t* storage,
                                     uint32_t image_bytes, uint16_t* order,
                                     uint32_t order_capacity);

// Appends one labelled image (image_bytes bytes), erasing the next block
// (the oldest records) when the ring wraps into it.
tl_persist_status_t tl_samples_append(tl_samples_t* store, uint32_t label,
                                      const void* image);

// Reads the k-th oldest valid record (0 <= k < store->count), checking its
// CRC (TL_PERSIST_NO_DATA if it no longer matches).
tl_persist_status_t tl_samples_read(const tl_samples_t* store, uint32_t k,
                                    uint32_t* label, void* image);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLITE_TL_SAMPLES_H_
