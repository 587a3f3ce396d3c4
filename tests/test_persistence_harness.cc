// Host harness for tl_persist.c: simulates a power cut at every byte offset of
// a save, on RAM-like storage and on NOR-flash-like storage (erase to 0xFF,
// programming can only clear bits), and checks that a restore after the cut
// always returns the last complete save. Exit status 0 = all checks passed.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tl_persist.h"

namespace {

struct SimStorage {
  std::vector<uint8_t> mem;
  bool flash = false;      // NOR semantics: write ANDs, erase sets 0xFF
  long budget = -1;        // bytes still writable before the cut; -1 = no cut
  bool dead = false;       // power is gone: every later call fails
  uint32_t rng = 12345u;

  uint8_t Torn(uint8_t old_value) {
    rng = rng * 1103515245u + 12345u;
    uint8_t garbage = static_cast<uint8_t>(rng >> 16);
    return flash ? static_cast<uint8_t>(old_value & garbage) : garbage;
  }

  // Applies one byte change under the power budget; false once power is cut.
  bool Put(uint32_t offset, uint8_t value, bool erase) {
    if (dead) return false;
    uint8_t& cell = mem[offset];
    if (budget == 0) {
      cell = erase ? static_cast<uint8_t>(cell | Torn(0)) : Torn(cell);
      dead = true;
      return false;
    }
    if (budget > 0) --budget;
    cell = erase ? 0xff : (flash ? static_cast<uint8_t>(cell & value) : value);
    return true;
  }
};

int Read(void* ctx, uint32_t offset, void* dst, uint32_t len) {
  SimStorage* s = static_cast<SimStorage*>(ctx);
  if (s->dead || offset + len > s->mem.size()) return -1;
  std::memcpy(dst, s->mem.data() + offset, len);
  return 0;
}

int Write(void* ctx, uint32_t offset, const void* src, uint32_t len) {
  SimStorage* s = static_cast<SimStorage*>(ctx);
  if (offset + len > s->mem.size()) return -1;
  const uint8_t* p = static_cast<const uint8_t*>(src);
  for (uint32_t i = 0; i < len; ++i) {
    if (!s->Put(offset + i, p[i], false)) return -1;
  }
  return 0;
}

int Erase(void* ctx, uint32_t offset, uint32_t len) {
  SimStorage* s = static_cast<SimStorage*>(ctx);
  if (offset + len > s->mem.size()) return -1;
  for (uint32_t i = 0; i < len; ++i) {
    if (!s->Put(offset + i, 0xff, true)) return -1;
  }
  return 0;
}

int g_failures = 0;
long g_checks = 0;

#define CHECK(cond, ...)                              \
  do {                                                \
    ++g_checks;                                       \
    if (!(cond)) {                                    \
      if (g_failures < 20) {                          \
        std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        std::fprintf(stderr, __VA_ARGS__);            \
        std::fprintf(stderr, "\n");                   \
      }                                               \
      ++g_failures;                                   \
    }                                                 \
  } while (0)

const uint32_t kSchema = 0xC0FFEEu;
const uint32_t kSegLens[3] = {37, 64, 9};  // 110 payload bytes, odd sizes

std::vector<uint8_t> Version(int v) {
  std::vector<uint8_t> bytes(kSegLens[0] + kSegLens[1] + kSegLens[2]);
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<uint8_t>(v * 131 + i * 7 + (v & 1 ? i * i : 3));
  }
  return bytes;
}

std::vector<tl_segment_t> Segments(std::vector<uint8_t>& bytes) {
  std::vector<tl_segment_t> segs;
  uint32_t at = 0;
  for (uint32_t len : kSegLens) {
    segs.push_back(tl_segment_t{bytes.data() + at, len});
    at += len;
  }
  return segs;
}

tl_storage_t Storage(SimStorage* sim, uint32_t slot, uint32_t program) {
  tl_storage_t s;
  s.ctx = sim;
  s.slot_size = slot;
  s.program_size = program;
  s.read = Read;
  s.write = Write;
  s.erase = sim->flash ? Erase : nullptr;
  return s;
}

tl_persist_status_t Save(const tl_storage_t& st, int version) {
  std::vector<uint8_t> bytes = Version(version);
  std::vector<tl_segment_t> segs = Segments(bytes);
  return tl_persist_save(&st, kSchema, segs.data(), segs.size(), nullptr);
}

// Returns the version restored (its bytes must match exactly), 0 if none.
int Restore(const tl_storage_t& st, int max_version) {
  std::vector<uint8_t> got(Version(0).size(), 0xAB);
  std::vector<tl_segment_t> segs = Segments(got);
  uint32_t seq = 0;
  tl_persist_status_t status =
      tl_persist_load(&st, kSchema, segs.data(), segs.size(), &seq);
  if (status == TL_PERSIST_NO_DATA) {
    CHECK(got == std::vector<uint8_t>(got.size(), 0xAB),
          "segments touched without data");
    return 0;
  }
  CHECK(status == TL_PERSIST_OK, "load status %d", status);
  for (int v = 1; v <= max_version; ++v) {
    if (got == Version(v)) return v;
  }
  CHECK(false, "restored bytes match no saved version (seq %u)", seq);
  return -1;
}

void CutEverywhere(bool flash, uint32_t program, int saves_before) {
  const uint32_t slot = 256;
  // Count the byte operations of one complete save to know every cut point.
  SimStorage probe;
  probe.flash = flash;
  probe.mem.assign(2 * slot, 0xff);
  tl_storage_t pst = Storage(&probe, slot, program);
  for (int v = 1; v <= saves_before; ++v) Save(pst, v);
  probe.budget = 1 << 30;
  Save(pst, saves_before + 1);
  long total = (1 << 30) - probe.budget;

  for (long cut = 0; cut <= total; ++cut) {
    SimStorage sim;
    sim.flash = flash;
    sim.rng = static_cast<uint32_t>(cut * 2654435761u + program);
    sim.mem.assign(2 * slot, flash ? 0xff : 0x00);
    tl_storage_t st = Storage(&sim, slot, program);
    for (int v = 1; v <= saves_before; ++v) {
      CHECK(Save(st, v) == TL_PERSIST_OK, "setup save %d", v);
    }
    sim.budget = cut;
    tl_persist_status_t status = Save(st, saves_before + 1);
    bool completed = status == TL_PERSIST_OK;
    CHECK(completed == (cut == total), "cut %ld of %ld: status %d", cut,
          total, status);
    // Reboot: power is back, nothing else changed.
    sim.dead = false;
    sim.budget = -1;
    int expected = completed ? saves_before + 1 : saves_before;
    int got = Restore(st, saves_before + 1);
    CHECK(got == expected, "flash=%d program=%u before=%d cut %ld/%ld: "
          "restored %d, expected %d", flash, program, saves_before, cut, total,
          got, expected);
    // The board keeps working after the cut: a new save wins.
    CHECK(Save(st, saves_before + 2) == TL_PERSIST_OK, "save after cut");
    CHECK(Restore(st, saves_before + 2) == saves_before + 2,
          "restore after recovery save, cut %ld", cut);
  }
}

void Basics() {
  SimStorage sim;
  sim.flash = true;
  sim.mem.assign(2 * 256, 0xff);
  tl_storage_t st = Storage(&sim, 256, 4);
  CHECK(Restore(st, 0) == 0, "fresh storage has no data");
  for (int v = 1; v <= 5; ++v) {
    CHECK(Save(st, v) == TL_PERSIST_OK, "save %d", v);
    CHECK(Restore(st, v) == v, "restore %d", v);
  }
  // Another schema (a different model) is refused, not misread.
  std::vector<uint8_t> bytes = Version(1);
  std::vector<tl_segment_t> segs = Segments(bytes);
  CHECK(tl_persist_load(&st, kSchema + 1, segs.data(), segs.size(), nullptr) ==
            TL_PERSIST_MISMATCH, "schema mismatch");
  CHECK(bytes == Version(1), "segments untouched on mismatch");
  // A payload larger than a slot is refused before touching storage.
  std::vector<uint8_t> big(300);
  tl_segment_t one{big.data(), 300};
  CHECK(tl_persist_save(&st, kSchema, &one, 1, nullptr) ==
            TL_PERSIST_BAD_ARGUMENT, "oversized payload");
  st.program_size = 3;
  CHECK(tl_persist_save(&st, kSchema, segs.data(), segs.size(), nullptr) ==
            TL_PERSIST_BAD_ARGUMENT, "program size 3");
  // A bit flip in the newest payload falls back to the previous save.
  st.program_size = 4;

  uint32_t seq = 0;
  std::vector<uint8_t> got = Version(0);
  std::vector<tl_segment_t> gsegs = Segments(got);
  tl_persist_load(&st, kSchema, gsegs.data(), gsegs.size(), &seq);
  int newest_slot = (seq % 2 == 1) ? 0 : 1;  // saves alternate from slot 0
  sim.mem[newest_slot * 256 + TL_PERSIST_HEADER_BYTES + 50] ^= 0x10;
  CHECK(Restore(st, 5) == 4, "bit flip falls back to the previous save");
  // Known CRC-32 check value ("123456789" -> 0xCBF43926).
  CHECK(tl_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 check value");
}

void SequenceWraps() {
  // Serial-number arithmetic: 0xFFFFFFFF -> 0 still counts as newer.
  SimStorage sim;
  sim.mem.assign(2 * 256, 0x00);
  tl_storage_t st = Storage(&sim, 256, 1);
  Save(st, 1);
  Save(st, 2);
  // Rewrite slot 1's sequence to 0xFFFFFFFF by re-encoding its header.
  uint8_t* h = sim.mem.data() + 256;
  h[8] = h[9] = h[10] = h[11] = 0xff;
  uint32_t crc = tl_crc32(0, h, 28);
  for (int i = 0; i < 4; ++i) h[28 + i] = static_cast<uint8_t>(crc >> (8 * i));
  CHECK(Save(st, 3) == TL_PERSIST_OK, "save after wrap");  // gets sequence 0
  CHECK(Restore(st, 3) == 3, "sequence 0 is newer than 0xFFFFFFFF");
}

}  // namespace

int main() {
  Basics();
  SequenceWraps();
  const uint32_t programs[] = {1, 4, 32};
  for (bool flash : {false, true}) {
    for (uint32_t program : programs) {
      for (int before = 0; before <= 3; ++before) {
        CutEverywhere(flash, program, before);
      }
    }
  }
  std::printf("checks=%ld failures=%d\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
