// Two-slot, CRC-checked parameter persistence; see tl_persist.h for the format.
#include "tl_persist.h"

#include <string.h>

#define TL_CHUNK TL_PERSIST_MAX_PROGRAM_BYTES

typedef struct {
  uint32_t magic;
  uint32_t schema_id;
  uint32_t sequence;
  uint32_t payload_len;
  uint32_t payload_crc;
  uint32_t header_crc;
} tl_header_t;

uint32_t tl_crc32(uint32_t crc, const void* data, size_t len) {
  // Reflected CRC-32 (IEEE 802.3, as zlib), four bits at a time: a 16-entry
  // table keeps flash use tiny while being ~4x faster than bitwise.
  static const uint32_t kNibble[16] = {
      0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
      0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
      0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
      0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
  const uint8_t* p = (const uint8_t*)data;
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) {
    crc ^= p[i];
    crc = (crc >> 4) ^ kNibble[crc & 0x0fu];
    crc = (crc >> 4) ^ kNibble[crc & 0x0fu];
  }
  return ~crc;
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

static void encode_header(const tl_header_t* h, uint8_t out[TL_PERSIST_HEADER_BYTES]) {
  memset(out, 0xff, TL_PERSIST_HEADER_BYTES);
  put_u32(out + 0, h->magic);
  put_u32(out + 4, h->schema_id);
  put_u32(out + 8, h->sequence);
  put_u32(out + 12, h->payload_len);
  put_u32(out + 16, h->payload_crc);
  put_u32(out + 28, tl_crc32(0, out, 28));
}

static int storage_ok(const tl_storage_t* s) {
  if (s == NULL || s->read == NULL || s->write == NULL) return 0;
  switch (s->program_size) {
    case 1: case 2: case 4: case 8: case 16: case 32: break;
    default: return 0;
  }
  return s->slot_size > TL_PERSIST_HEADER_BYTES &&
         s->slot_size % s->program_size == 0;
}

static int segments_total(const tl_segment_t* segs, size_t n, uint32_t* total) {
  uint32_t sum = 0;
  if (n > 0 && segs == NULL) return 0;
  for (size_t i = 0; i < n; ++i) {
    if (segs[i].len > 0 && segs[i].data == NULL) return 0;
    if (segs[i].len > UINT32_MAX - sum) return 0;
    sum += segs[i].len;
  }
  *total = sum;
  return 1;
}

// Reads and validates a slot's header; 1 if the header itself is intact.
static int read_header(const tl_storage_t* s, int slot, tl_header_t* h) {
  uint8_t raw[TL_PERSIST_HEADER_BYTES];
  if (s->read(s->ctx, (uint32_t)slot * s->slot_size, raw, sizeof(raw)) != 0) {
    return 0;
  }
  h->magic = get_u32(raw + 0);
  h->schema_id = get_u32(raw + 4);
  h->sequence = get_u32(raw + 8);
  h->payload_len = get_u32(raw + 12);
  h->payload_crc = get_u32(raw + 16);
  h->header_crc = get_u32(raw + 28);
  return h->magic == TL_PERSIST_MAGIC &&
         h->header_crc == tl_crc32(0, raw, 28) &&
         h->payload_len <= s->slot_size - TL_PERSIST_HEADER_BYTES;
}

static int payload_intact(const tl_storage_t* s, int slot, const tl_header_t* h) {
  uint8_t buf[64];
  uint32_t crc = 0;
  uint32_t base = (uint32_t)slot * s->slot_size + TL_PERSIST_HEADER_BYTES;
  for (uint32_t done = 0; done < h->payload_len;) {
    uint32_t n = h->payload_len - done;
    if (n > sizeof(buf)) n = sizeof(buf);
    if (s->read(s->ctx, base + done, buf, n) != 0) return 0;
    crc = tl_crc32(crc, buf, n);
    done += n;
  }
  return crc == h->payload_crc;
}

// Sequence numbers compare by serial-number arithmetic so they may wrap.
static int newer(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

// Index of the slot with the newest fully valid save, or -1.
static int newest_valid(const tl_storage_t* s, tl_header_t* out) {
  tl_header_t h[2];
  int valid[2];
  for (int i = 0; i < 2; ++i) {
    valid[i] = read_header(s, i, &h[i]) && payload_intact(s, i, &h[i]);
  }
  int best = -1;
  if (valid[0] && valid[1]) {
    best = newer(h[1].sequence, h[0].sequence) ? 1 : 0;
  } else if (valid[0]) {
    best = 0;
  } else if (valid[1]) {
    best = 1;
  }
  if (best >= 0) *out = h[best];
  return best;
}

// Streams bytes into storage in whole program_size units through a small
// staging buffer (flash can only be programmed in aligned units).
typedef struct {
  const tl_storage_t* s;
  uint32_t offset;
  uint8_t buf[TL_CHUNK];
  uint32_t fill;
  int failed;
} tl_writer_t;

static void writer_flush(tl_writer_t* w, int pad) {
  uint32_t unit = w->s->program_size;
  uint32_t n = pad ? (w->fill + unit - 1) / unit * unit : w->fill;
  if (n == 0 || w->failed) return;
  memset(w->buf + w->fill, 0xff, n - w->fill);
  if (w->s->write(w->s->ctx, w->offset, w->buf, n) != 0) w->failed = 1;
  w->offset += n;
  w->fill = 0;
}

static void writer_put(tl_writer_t* w, const uint8_t* p, uint32_t len) {
  while (len > 0 && !w->failed) {
    uint32_t n = TL_CHUNK - w->fill;
    if (n > len) n = len;
    memcpy(w->buf + w->fill, p, n);
    w->fill += n;
    p += n;
    len -= n;
    if (w->fill == TL_CHUNK) writer_flush(w, 0);
  }
}

tl_persist_status_t tl_persist_save_stream(const tl_storage_t* s,
                                           uint32_t schema_id,
                                           uint32_t total,
                                           tl_persist_producer_t producer,
                                           void* producer_ctx,
                                           uint32_t* sequence) {
  if (!storage_ok(s) || producer == NULL ||
      total > s->slot_size - TL_PERSIST_HEADER_BYTES) {
    return TL_PERSIST_BAD_ARGUMENT;
  }
  tl_header_t last;
  int last_slot = newest_valid(s, &last);
  int slot = last_slot == 0 ? 1 : 0;
  uint32_t base = (uint32_t)slot * s->slot_size;

  if (s->erase != NULL && s->erase(s->ctx, base, s->slot_size) != 0) {
    return TL_PERSIST_IO_ERROR;
  }
  // Payload first, header last: until the header is complete the slot fails
  // its header CRC (or its old header's payload CRC), so the other slot wins.
  tl_writer_t w;
  w.s = s;
  w.offset = base + TL_PERSIST_HEADER_BYTES;
  w.fill = 0;
  w.failed = 0;
  uint32_t crc = 0;
  uint8_t chunk[64];
  for (uint32_t done = 0; done < total && !w.failed;) {
    uint32_t n = total - done;
    if (n > sizeof(chunk)) n = sizeof(chunk);
    if (producer(producer_ctx, done, chunk, n) != 0) {
      return TL_PERSIST_IO_ERROR;
    }
    crc = tl_crc32(crc, chunk, n);
    writer_put(&w, chunk, n);
    done += n;
  }
  writer_flush(&w, 1);
  if (w.failed) return TL_PERSIST_IO_ERROR;

  tl_header_t h;
  h.magic = TL_PERSIST_MAGIC;
  h.schema_id = schema_id;
  h.sequence = last_slot >= 0 ? last.sequence + 1u : 1u;
  h.payload_len = total;
  h.payload_crc = crc;
  h.header_crc = 0;
  uint8_t raw[TL_PERSIST_HEADER_BYTES];
  encode_header(&h, raw);
  if (s->write(s->ctx, base, raw, TL_PERSIST_HEADER_BYTES) != 0) {
    return TL_PERSIST_IO_ERROR;
  }
  if (sequence != NULL) *sequence = h.sequence;
  return TL_PERSIST_OK;
}

tl_persist_status_t tl_persist_find(const tl_storage_t* s,
                                    tl_persist_found_t* found) {
  if (!storage_ok(s) || found == NULL) return TL_PERSIST_BAD_ARGUMENT;
  tl_header_t h;
  int slot = newest_valid(s, &h);
  if (slot < 0) return TL_PERSIST_NO_DATA;
  found->slot = slot;
  found->sequence = h.sequence;
  found->schema_id = h.schema_id;
  found->payload_len = h.payload_len;
  return TL_PERSIST_OK;
}

tl_persist_status_t tl_persist_read(const tl_storage_t* s,
                                    const tl_persist_found_t* found,
                                    uint32_t offset, void* dst, uint32_t len) {
  if (!storage_ok(s) || found == NULL || (len > 0 && dst == NULL) ||
      offset > found->payload_len || len > found->payload_len - offset) {
    return TL_PERSIST_BAD_ARGUMENT;
  }
  uint32_t base = (uint32_t)found->slot * s->slot_size + TL_PERSIST_HEADER_BYTES;
  if (len > 0 && s->read(s->ctx, base + offset, dst, len) != 0) {
    return TL_PERSIST_IO_ERROR;
  }
  return TL_PERSIST_OK;
}

typedef struct {
  const tl_segment_t* segs;
  size_t n;
} tl_gather_t;

// Producer over a list of segments (the payload is their concatenation).
static int gather(void* ctx, uint32_t offset, void* dst, uint32_t len) {
  const tl_gather_t* g = (const tl_gather_t*)ctx;
  uint8_t* out = (uint8_t*)dst;
  uint32_t start = 0;
  for (size_t i = 0; i < g->n && len > 0; ++i) {
    uint32_t end = start + g->segs[i].len;
    if (offset < end) {
      uint32_t from = offset - start;
      uint32_t n = end - offset;
      if (n > len) n = len;
      memcpy(out, (const uint8_t*)g->segs[i].data + from, n);
      out += n;
      offset += n;
      len -= n;
    }
    start = end;
  }
  return len == 0 ? 0 : -1;
}

tl_persist_status_t tl_persist_save(const tl_storage_t* s, uint32_t schema_id,
                                    const tl_segment_t* segs, size_t n,
                                    uint32_t* sequence) {
  uint32_t total = 0;
  if (!segments_total(segs, n, &total)) return TL_PERSIST_BAD_ARGUMENT;
  tl_gather_t g;
  g.segs = segs;
  g.n = n;
  return tl_persist_save_stream(s, schema_id, total, gather, &g, sequence);
}

tl_persist_status_t tl_persist_load(const tl_storage_t* s, uint32_t schema_id,
                                    const tl_segment_t* segs, size_t n,
                                    uint32_t* sequence) {
  uint32_t total = 0;
  if (!storage_ok(s) || !segments_total(segs, n, &total)) {
    return TL_PERSIST_BAD_ARGUMENT;
  }
  tl_persist_found_t found;
  tl_persist_status_t status = tl_persist_find(s, &found);
  if (status != TL_PERSIST_OK) return status;
  if (found.schema_id != schema_id || found.payload_len != total) {
    return TL_PERSIST_MISMATCH;
  }
  uint32_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    status = tl_persist_read(s, &found, offset, segs[i].data, segs[i].len);
    if (status != TL_PERSIST_OK) return status;
    offset += segs[i].len;
  }
  if (sequence != NULL) *sequence = found.sequence;
  return TL_PERSIST_OK;
}
