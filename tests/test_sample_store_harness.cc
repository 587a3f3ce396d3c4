// Host harness for tl_samples.c on a RAM-emulated NOR flash that enforces
// what real flash does: a write must cover whole aligned program units of
// erased (0xFF) bytes, an erase whole aligned erase units. Checks the ring
// through several laps, then a power cut at every byte of an append (and of
// the block erase it starts): after the cut the store mounts, holds every
// earlier sample but those the wrap was erasing, and appends again.
// Exit status 0 = all checks passed; prints "checks=<n>".
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tl_samples.h"

namespace {

int g_failures = 0;
long g_checks = 0;

#define CHECK(cond, ...)                                          \
  do {                                                            \
    ++g_checks;                                                   \
    if (!(cond)) {                                                \
      if (g_failures < 20) {                                      \
        std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        std::fprintf(stderr, __VA_ARGS__);                        \
        std::fprintf(stderr, "\n");                               \
      }                                                           \
      ++g_failures;                                               \
    }                                                             \
  } while (0)

struct Flash {
  std::vector<uint8_t> mem;
  uint32_t program = 4;
  uint32_t erase_unit = 256;
  long budget = -1;   // byte operations left before the power cut; -1: none
  bool dead = false;
  long violations = 0;  // writes to unerased bytes or misaligned operations
  uint32_t rng = 99u;

  bool Tick(uint8_t* cell, uint8_t value, bool erase) {
    if (dead) return false;
    if (budget == 0) {
      rng = rng * 1103515245u + 12345u;
      uint8_t garbage = static_cast<uint8_t>(rng >> 16);
      *cell = erase ? static_cast<uint8_t>(*cell | garbage)
                    : static_cast<uint8_t>(*cell & garbage);
      dead = true;
      return false;
    }
    if (budget > 0) --budget;
    *cell = erase ? 0xff : static_cast<uint8_t>(*cell & value);
    return true;
  }
};

int Read(void* ctx, uint32_t offset, void* dst, uint32_t len) {
  Flash* f = static_cast<Flash*>(ctx);
  if (f->dead || offset + len > f->mem.size()) return -1;
  std::memcpy(dst, f->mem.data() + offset, len);
  return 0;
}

int Write(void* ctx, uint32_t offset, const void* src, uint32_t len) {
  Flash* f = static_cast<Flash*>(ctx);
  if (offset + len > f->mem.size()) return -1;
  if (offset % f->program != 0 || len % f->program != 0) {
    ++f->violations;
    return -1;
  }
  for (uint32_t i = 0; i < len; ++i) {
    if (f->mem[offset + i] != 0xff) {
      ++f->violations;
      return -1;
    }
  }
  const uint8_t* p = static_cast<const uint8_t*>(src);
  for (uint32_t i = 0; i < len; ++i) {
    if (!f->Tick(&f->mem[offset + i], p[i], false)) return -1;
  }
  return 0;
}

int Erase(void* ctx, uint32_t offset, uint32_t len) {
  Flash* f = static_cast<Flash*>(ctx);
  if (offset + len > f->mem.size()) return -1;
  if (offset % f->erase_unit != 0 || len % f->erase_unit != 0) {
    ++f->violations;
    return -1;
  }
  for (uint32_t i = 0; i < len; ++i) {
    if (!f->Tick(&f->mem[offset + i], 0xff, true)) return -1;
  }
  return 0;
}

const uint32_t kSlot = 512;  // the two parameter slots before the area

tl_storage_t Storage(Flash* f, uint32_t area) {
  tl_storage_t s;
  std::memset(&s, 0, sizeof(s));
  s.ctx = f;
  s.slot_size = kSlot;
  s.program_size = f->program;
  s.read = Read;
  s.write = Write;
  s.erase = Erase;
  s.erase_size = f->erase_unit;
  s.sample_size = area;
  return s;
}

std::vector<uint8_t> Image(uint32_t n, uint32_t i) {
  std::vector<uint8_t> img(n);
  for (uint32_t k = 0; k < n; ++k) {
    img[k] = static_cast<uint8_t>(i * 37u + k * 11u + (k * k >> 3));
  }
  return img;
}

uint32_t LabelOf(uint32_t i) { return i % 5u; }

// The store's records, oldest first, as sample numbers; -1 for a record
// that does not match any sample (must never happen).
std::vector<long> Contents(const tl_samples_t& st, uint32_t image_bytes,
                           uint32_t appended) {
  std::vector<long> out;
  std::vector<uint8_t> buf(image_bytes);
  for (uint32_t k = 0; k < st.count; ++k) {
    uint32_t label = 0;
    long which = -1;
    if (tl_samples_read(&st, k, &label, buf.data()) == TL_PERSIST_OK) {
      for (uint32_t i = 0; i < appended + 1 && which < 0; ++i) {
        if (label == LabelOf(i) && buf == Image(image_bytes, i)) which = i;
      }
    }
    out.push_back(which);
  }
  return out;
}

// Several laps: after every append a fresh mount sees the newest samples in
// order, at least min_samples of them once that many were added.
void Laps(uint32_t image_bytes, uint32_t program, uint32_t erase_unit) {
  const uint32_t min_samples = 7;
  Flash f;
  f.program = program;
  f.erase_unit = erase_unit;
  uint32_t area = tl_samples_area_bytes(image_bytes, erase_unit, min_samples);
  f.mem.assign(2 * kSlot + area, 0xff);
  tl_storage_t s = Storage(&f, area);
  std::vector<uint16_t> order(64);
  tl_samples_t st;
  CHECK(tl_samples_mount(&st, &s, image_bytes, order.data(), 64) ==
            TL_PERSIST_OK, "mount empty");
  CHECK(st.count == 0, "empty store has %u", st.count);
  const uint32_t total = 4 * st.num_slots + 3;
  for (uint32_t i = 0; i < total; ++i) {
    std::vector<uint8_t> img = Image(image_bytes, i);
    CHECK(tl_samples_append(&st, LabelOf(i), img.data()) == TL_PERSIST_OK,
          "append %u", i);
    tl_samples_t again;
    std::vector<uint16_t> order2(64);
    CHECK(tl_samples_mount(&again, &s, image_bytes, order2.data(), 64) ==
              TL_PERSIST_OK, "remount");
    CHECK(again.count == st.count, "count %u vs %u", again.count, st.count);
    CHECK(again.count >= (i + 1 < min_samples ? i + 1 : min_samples),
          "only %u samples after %u", again.count, i + 1);
    std::vector<long> got = Contents(again, image_bytes, i);
    for (size_t k = 0; k < got.size(); ++k) {
      long want = static_cast<long>(i + 1 - got.size() + k);
      CHECK(got[k] == want, "record %zu is %ld, want %ld", k, got[k], want);
    }
    st = again;
    order = order2;
    st.order = order.data();
  }
  CHECK(f.violations == 0, "%ld flash violations", f.violations);
  // Every erase unit of the area was erased about total / num_slots times.
}

// A power cut at every byte operation of one append, at several positions
// of the ring (block starts: the cut may land in the erase).
void PowerCuts(uint32_t image_bytes, uint32_t program, uint32_t erase_unit) {
  const uint32_t min_samples = 5;
  uint32_t area = tl_samples_area_bytes(image_bytes, erase_unit, min_samples);
  Flash base;
  base.program = program;
  base.erase_unit = erase_unit;
  base.mem.assign(2 * kSlot + area, 0xff);
  tl_storage_t s0 = Storage(&base, area);
  std::vector<uint16_t> order0(64);
  tl_samples_t st0;
  tl_samples_mount(&st0, &s0, image_bytes, order0.data(), 64);
  const uint32_t laps = 2 * st0.num_slots + 2;
  for (uint32_t n = 0; n < laps; ++n) {
    // base holds samples 0..n-1; cut the append of sample n at every byte.
    std::vector<long> before = Contents(st0, image_bytes, n);
    long ops = 0;
    for (long cut = 0;; ++cut) {
      Flash f = base;
      f.budget = cut;
      tl_storage_t s = Storage(&f, area);
      std::vector<uint16_t> order(64);
      tl_samples_t st;
      tl_samples_mount(&st, &s, image_bytes, order.data(), 64);
      std::vector<uint8_t> img = Image(image_bytes, n);
      bool ok = tl_samples_append(&st, LabelOf(n), img.data()) ==
                TL_PERSIST_OK;
      if (ok && !f.dead) {
        ops = cut;
        break;
      }
      f.dead = false;  // power back: reboot
      f.budget = -1;
      tl_samples_t after;
      CHECK(tl_samples_mount(&after, &s, image_bytes, order.data(), 64) ==
                TL_PERSIST_OK, "mount after cut");
      std::vector<long> got = Contents(after, image_bytes, n);
      // Every record is a sample, in order, ending with the newest earlier
      // one (or the new one); only the oldest may be gone (the wrap's erase).
      for (size_t k = 0; k < got.size(); ++k) {
        CHECK(got[k] >= 0, "cut %ld: record %zu is no sample", cut, k);
        if (k > 0) CHECK(got[k] == got[k - 1] + 1, "cut %ld: order", cut);
      }
      if (!before.empty()) {
        bool has_last = false;
        for (long g : got) has_last |= g == before.back();
        CHECK(has_last, "cut %ld of sample %u: sample %ld lost", cut, n,
              before.back());
        CHECK(got.size() + st0.records_per_block >= before.size(),
              "cut %ld: %zu of %zu samples left", cut, got.size(),
              before.size());
      }
      // The next append after the reboot works on erased flash only.
      std::vector<uint8_t> img2 = Image(image_bytes, n + 1);
      long v = f.violations;
      CHECK(tl_samples_append(&after, LabelOf(n + 1), img2.data()) ==
                TL_PERSIST_OK, "append after cut %ld", cut);
      CHECK(f.violations == v, "cut %ld: append after reboot violated", cut);
      std::vector<long> now = Contents(after, image_bytes, n + 1);
      CHECK(!now.empty() && now.back() == static_cast<long>(n + 1),
            "cut %ld: newest after reboot", cut);
    }
    CHECK(ops > 0, "append %u never completed", n);
    std::vector<uint8_t> img = Image(image_bytes, n);
    tl_samples_append(&st0, LabelOf(n), img.data());
  }
  CHECK(base.violations == 0, "%ld violations", base.violations);
}

}  // namespace

int main() {
  CHECK(tl_samples_record_bytes(1) == 64, "record of 1 byte");
  CHECK(tl_samples_record_bytes(32) == 64, "record of 32 bytes");
  CHECK(tl_samples_record_bytes(33) == 96, "record of 33 bytes");
  // 256 px records: 4096 B erase units hold 14 of 288 B; 7 samples need one
  // block and the wrap's spare block.
  CHECK(tl_samples_area_bytes(256, 4096, 7) == 8192, "area 256/4096/7");
  CHECK(tl_samples_area_bytes(9216, 4096, 16) == 17 * 12288, "area 96 px");
  {
    Flash f;
    f.mem.assign(4096, 0xff);
    tl_storage_t s = Storage(&f, 256);  // smaller than two blocks
    std::vector<uint16_t> order(8);
    tl_samples_t st;
    CHECK(tl_samples_mount(&st, &s, 200, order.data(), 8) ==
              TL_PERSIST_BAD_ARGUMENT, "too small an area");
  }
  const uint32_t programs[3] = {1, 4, 32};
  for (uint32_t p : programs) {
    Laps(50, p, 256);    // several records per erase unit
    Laps(300, p, 256);   // a record spans two erase units
    PowerCuts(50, p, 128);
  }
  PowerCuts(300, 4, 256);
  std::printf("checks=%ld failures=%d\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
