// Ring of CRC-checked sample records in flash; see tl_samples.h.
#include "tl_samples.h"

#include <string.h>

#define TL_SAMPLES_ALIGN 32u /* TL_PERSIST_MAX_PROGRAM_BYTES */

static uint32_t align_up(uint32_t n, uint32_t a) {
  return (n + a - 1u) / a * a;
}

static void put_u32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

uint32_t tl_samples_record_bytes(uint32_t image_bytes) {
  return align_up(TL_SAMPLES_HEADER_BYTES + image_bytes, TL_SAMPLES_ALIGN);
}

static uint32_t block_bytes_for(uint32_t record, uint32_t erase_size) {
  return align_up(record, erase_size > 0 ? erase_size : 1u);
}

uint32_t tl_samples_area_bytes(uint32_t image_bytes, uint32_t erase_size,
                               uint32_t min_samples) {
  uint32_t record = tl_samples_record_bytes(image_bytes);
  uint32_t block = block_bytes_for(record, erase_size);
  uint32_t per_block = block / record;
  return ((min_samples + per_block - 1u) / per_block + 1u) * block;
}

static uint32_t slot_offset(const tl_samples_t* st, uint32_t slot) {
  return st->base + (slot / st->records_per_block) * st->block_bytes +
         (slot % st->records_per_block) * st->record_bytes;
}

// CRC of a record's header bytes 0..27 and its image, read from storage.
// 1 if the record at `slot` is valid; its header fields go to *seq, *label.
static int record_valid(const tl_samples_t* st, uint32_t slot, uint32_t* seq,
                        uint32_t* label) {
  const tl_storage_t* s = st->storage;
  uint8_t buf[64];
  uint32_t at = slot_offset(st, slot);
  if (s->read(s->ctx, at, buf, TL_SAMPLES_HEADER_BYTES) != 0) return 0;
  if (get_u32(buf) != TL_SAMPLES_MAGIC) return 0;
  uint32_t want = get_u32(buf + 28);
  *seq = get_u32(buf + 4);
  *label = get_u32(buf + 8);
  uint32_t crc = tl_crc32(0, buf, 28);
  at += TL_SAMPLES_HEADER_BYTES;
  for (uint32_t done = 0; done < st->image_bytes;) {
    uint32_t n = st->image_bytes - done;
    if (n > sizeof(buf)) n = sizeof(buf);
    if (s->read(s->ctx, at + done, buf, n) != 0) return 0;
    crc = tl_crc32(crc, buf, n);
    done += n;
  }
  return crc == want;
}

// 1 if every byte of the record at `slot` is erased (0xFF).
static int record_blank(const tl_samples_t* st, uint32_t slot) {
  const tl_storage_t* s = st->storage;
  uint8_t buf[64];
  uint32_t at = slot_offset(st, slot);
  for (uint32_t done = 0; done < st->record_bytes;) {
    uint32_t n = st->record_bytes - done;
    if (n > sizeof(buf)) n = sizeof(buf);
    if (s->read(s->ctx, at + done, buf, n) != 0) return 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (buf[i] != 0xffu) return 0;
    }
    done += n;
  }
  return 1;
}

static int program_ok(uint32_t p) {
  return p == 1 || p == 2 || p == 4 || p == 8 || p == 16 || p == 32;
}

static int newer(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

static void reverse(uint16_t* a, uint32_t n) {
  for (uint32_t i = 0; i < n / 2; ++i) {
    uint16_t t = a[i];
    a[i] = a[n - 1 - i];
    a[n - 1 - i] = t;
  }
}

tl_persist_status_t tl_samples_mount(tl_samples_t* st,
                                     const tl_storage_t* s,
                                     uint32_t image_bytes, uint16_t* order,
                                     uint32_t order_capacity) {
  if (st == NULL || s == NULL || s->read == NULL || s->write == NULL ||
      order == NULL || image_bytes == 0 || !program_ok(s->program_size) ||
      (s->erase != NULL && s->erase_size == 0) ||
      s->slot_size > (UINT32_MAX - s->sample_size) / 2u) {
    return TL_PERSIST_BAD_ARGUMENT;
  }
  memset(st, 0, sizeof(*st));
  st->storage = s;
  st->base = 2u * s->slot_size;
  st->image_bytes = image_bytes;
  st->record_bytes = tl_samples_record_bytes(image_bytes);
  st->block_bytes = block_bytes_for(st->record_bytes,
                                    s->erase != NULL ? s->erase_size : 0u);
  st->records_per_block = st->block_bytes / st->record_bytes;
  st->num_blocks = s->sample_size / st->block_bytes;
  if (order_capacity > 0xffffu) order_capacity = 0xffffu;
  while (st->num_blocks * st->records_per_block > order_capacity) {
    --st->num_blocks;
  }
  if (st->num_blocks < 2) return TL_PERSIST_BAD_ARGUMENT;
  st->num_slots = st->num_blocks * st->records_per_block;
  st->order = order;

  // Valid records in slot order, and the newest of them.
  int found = 0;
  uint32_t newest = 0, newest_seq = 0;
  for (uint32_t slot = 0; slot < st->num_slots; ++slot) {
    uint32_t seq = 0, label = 0;
    if (!record_valid(st, slot, &seq, &label)) continue;
    order[st->count++] = (uint16_t)slot;
    if (!found || newer(seq, newest_seq)) {
      newest = slot;
      newest_seq = seq;
      found = 1;
    }
  }
  if (found) {
    // Records are written in ring order: the oldest follows the newest.
    uint32_t split = 0;
    while (split < st->count && order[split] <= newest) ++split;
    reverse(order, split);
    reverse(order + split, st->count - split);
    reverse(order, st->count);
    st->next_slot = (newest + 1u) % st->num_slots;
    st->next_sequence = newest_seq + 1u;
  } else {
    st->next_slot = 0;
    st->next_sequence = 1;
  }
  // Inside a block only erased records can be programmed: skip torn ones
  // (a cut append); a block start is erased before it is written.
  while (st->next_slot % st->records_per_block != 0 &&
         !record_blank(st, st->next_slot)) {
    st->next_slot = (st->next_slot + 1u) % st->num_slots;
  }
  return TL_PERSIST_OK;
}

static int erase_block(tl_samples_t* st, uint32_t block) {
  const tl_storage_t* s = st->storage;
  uint32_t at = st->base + block * st->block_bytes;
  if (s->erase != NULL) return s->erase(s->ctx, at, st->block_bytes);
  uint8_t ff[TL_SAMPLES_ALIGN];
  memset(ff, 0xff, sizeof(ff));
  for (uint32_t done = 0; done < st->block_bytes; done += sizeof(ff)) {
    uint32_t n = st->block_bytes - done;
    if (n > sizeof(ff)) n = sizeof(ff);
    if (s->write(s->ctx, at + done, ff, n) != 0) return -1;
  }
  return 0;
}

tl_persist_status_t tl_samples_append(tl_samples_t* st, uint32_t label,
                                      const void* image) {
  if (st == NULL || st->storage == NULL || image == NULL) {
    return TL_PERSIST_BAD_ARGUMENT;
  }
  const tl_storage_t* s = st->storage;
  uint32_t slot = st->next_slot;
  if (slot % st->records_per_block == 0) {
    uint32_t block = slot / st->records_per_block;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < st->count; ++i) {
      if (st->order[i] / st->records_per_block != block) {
        st->order[kept++] = st->order[i];
      }
    }
    st->count = kept;
    if (erase_block(st, block) != 0) return TL_PERSIST_IO_ERROR;
  }
  // From here on this record is not programmed again before its block is
  // erased, whatever happens below.
  st->next_slot = (slot + 1u) % st->num_slots;
  uint8_t header[TL_SAMPLES_HEADER_BYTES];
  memset(header, 0xff, sizeof(header));
  put_u32(header + 0, TL_SAMPLES_MAGIC);
  put_u32(header + 4, st->next_sequence);
  put_u32(header + 8, label);
  uint32_t crc = tl_crc32(0, header, 28);
  crc = tl_crc32(crc, image, st->image_bytes);
  put_u32(header + 28, crc);

  // Image first, in 32-byte units padded with 0xFF to the program size.
  const uint8_t* p = (const uint8_t*)image;
  uint32_t at = slot_offset(st, slot) + TL_SAMPLES_HEADER_BYTES;
  uint8_t chunk[TL_SAMPLES_ALIGN];
  for (uint32_t done = 0; done < st->image_bytes; done += sizeof(chunk)) {
    uint32_t n = st->image_bytes - done;
    if (n > sizeof(chunk)) n = sizeof(chunk);
    uint32_t padded = align_up(n, s->program_size);
    memset(chunk, 0xff, sizeof(chunk));
    memcpy(chunk, p + done, n);
    if (s->write(s->ctx, at + done, chunk, padded) != 0) {
      return TL_PERSIST_IO_ERROR;
    }
  }
  // The header last: its CRC makes the record valid.
  if (s->write(s->ctx, slot_offset(st, slot), header, sizeof(header)) != 0) {
    return TL_PERSIST_IO_ERROR;
  }
  st->order[st->count++] = (uint16_t)slot;
  ++st->next_sequence;
  return TL_PERSIST_OK;
}

tl_persist_status_t tl_samples_read(const tl_samples_t* st, uint32_t k,
                                    uint32_t* label, void* image) {
  if (st == NULL || st->storage == NULL || k >= st->count || label == NULL ||
      image == NULL) {
    return TL_PERSIST_BAD_ARGUMENT;
  }
  const tl_storage_t* s = st->storage;
  uint32_t at = slot_offset(st, st->order[k]);
  uint8_t header[TL_SAMPLES_HEADER_BYTES];
  if (s->read(s->ctx, at, header, sizeof(header)) != 0 ||
      s->read(s->ctx, at + TL_SAMPLES_HEADER_BYTES, image,
              st->image_bytes) != 0) {
    return TL_PERSIST_IO_ERROR;
  }
  uint32_t crc = tl_crc32(tl_crc32(0, header, 28), image, st->image_bytes);
  if (get_u32(header) != TL_SAMPLES_MAGIC || crc != get_u32(header + 28)) {
    return TL_PERSIST_NO_DATA;
  }
  *label = get_u32(header + 8);
  return TL_PERSIST_OK;
}
