// Power-cut-safe storage of trained parameters in two alternating slots.
//
// Each save goes to the slot that does not hold the newest valid save, and a
// slot only counts as valid when its header CRC and its payload CRC both match.
// The header, which carries the sequence number, is written last, so a power
// cut at any point of a save leaves the previous save intact and restorable.
//
// Slot layout (little-endian, offsets within the slot):
//   0  u32 magic "TLP1"     16 u32 payload_crc (CRC-32 of the payload)
//   4  u32 schema_id        20 .. 27 reserved (0xFF)
//   8  u32 sequence         28 u32 header_crc (CRC-32 of bytes 0..27)
//  12  u32 payload_len      32 payload
// The header CRC is the header's last field, so the last byte of a save to be
// written is the one that makes it valid: a save counts only once complete.
//
// Framework-free C (C99 / C++11): the board supplies a tl_storage_t.
#ifndef TFLITE_TL_PERSIST_H_
#define TFLITE_TL_PERSIST_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TL_PERSIST_MAGIC 0x31504c54u /* "TLP1" read as little-endian u32 */
#define TL_PERSIST_HEADER_BYTES 32u
#define TL_PERSIST_MAX_PROGRAM_BYTES 32u

typedef enum {
  TL_PERSIST_OK = 0,
  TL_PERSIST_NO_DATA = 1,       // neither slot holds a valid save
  TL_PERSIST_BAD_ARGUMENT = 2,  // sizes do not fit the slot or program size
  TL_PERSIST_IO_ERROR = 3,      // a storage callback failed
  TL_PERSIST_MISMATCH = 4       // newest save has another schema or size
} tl_persist_status_t;

// Byte-addressed storage holding two slots: slot k starts at k * slot_size.
// Callbacks return 0 on success. `erase` may be NULL for storage that can be
// overwritten in place (RAM, EEPROM, FRAM, files); flash must erase.
// Optionally a sample area (tl_samples.h) of sample_size bytes follows the
// two slots, at offset 2 * slot_size (0: none).
typedef struct {
  void* ctx;
  uint32_t slot_size;     // bytes per slot, a multiple of the erase unit
  uint32_t program_size;  // write granularity: 1, 2, 4, 8, 16 or 32 bytes
  int (*read)(void* ctx, uint32_t offset, void* dst, uint32_t len);
  int (*write)(void* ctx, uint32_t offset, const void* src, uint32_t len);
  int (*erase)(void* ctx, uint32_t offset, uint32_t len);
  uint32_t erase_size;    // erase unit in bytes (0: no erase, as erase NULL)
  uint32_t sample_size;   // bytes of the sample area after the slots
} tl_storage_t;

// One contiguous piece of the payload (the parameters are saved as the
// concatenation of all segments, in order).
typedef struct {
  void* data;
  uint32_t len;
} tl_segment_t;

// Supplies `len` payload bytes starting at `offset` into `dst` (streaming
// saves never need the whole payload in RAM). Returns 0 on success.
typedef int (*tl_persist_producer_t)(void* ctx, uint32_t offset, void* dst,
                                     uint32_t len);

// The newest valid save found by tl_persist_find.
typedef struct {
  int slot;
  uint32_t sequence;
  uint32_t schema_id;
  uint32_t payload_len;
} tl_persist_found_t;

uint32_t tl_crc32(uint32_t crc, const void* data, size_t len);

// Saves `payload_len` bytes produced by `producer` as a new version.
tl_persist_status_t tl_persist_save_stream(const tl_storage_t* storage,
                                           uint32_t schema_id,
                                           uint32_t payload_len,
                                           tl_persist_producer_t producer,
                                           void* producer_ctx,
                                           uint32_t* sequence);

// Finds the newest save whose header and payload CRCs are intact, without
// copying anything. TL_PERSIST_NO_DATA if there is none.
tl_persist_status_t tl_persist_find(const tl_storage_t* storage,
                                    tl_persist_found_t* found);

// Reads payload bytes of a save returned by tl_persist_find.
tl_persist_status_t tl_persist_read(const tl_storage_t* storage,
                                    const tl_persist_found_t* found,
                                    uint32_t offset, void* dst, uint32_t len);

// Saves the segments as a new version; on success *sequence (if not NULL)
// receives its sequence number.
tl_persist_status_t tl_persist_save(const tl_storage_t* storage,
                                    uint32_t schema_id,
                                    const tl_segment_t* segments,
                                    size_t num_segments, uint32_t* sequence);

// Restores the newest valid save into the segments. The segments are written
// only when a save with the same schema_id and total size is found and its
// CRCs match; otherwise they are left untouched.
tl_persist_status_t tl_persist_load(const tl_storage_t* storage,
                                    uint32_t schema_id,
                                    const tl_segment_t* segments,
                                    size_t num_segments, uint32_t* sequence);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLITE_TL_PERSIST_H_
