// tl_host_app: the exported library's serial App (tl_app.h) on a PC, with the
// protocol on stdin/stdout and the parameter storage in a file. The arena is
// a static array of exactly tltl::kArenaBytes, as on the board, so a model
// that needs more fails here as it would there.
//
// Usage: tl_host_app STORAGE_FILE
// STORAGE_FILE holds the two persistence slots and, when the export keeps
// its samples in flash, the sample area (created erased, 0xFF, if absent);
// it survives the process, like a board's flash survives a reset. It acts as
// NOR flash: a write must cover whole 4-byte program units (the nRF52840's)
// of erased bytes, an erase whole 4 KB sectors; a violation fails the call.
// Built against the export's sources by tflite_tl/firmware/host_app.py.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tl_app.h"
#include "tl_model_config.h"
#include "tl_persist.h"

namespace {

alignas(16) uint8_t g_arena[tltl::kArenaBytes];
tltl::App g_app;

// The slot size a board uses: the payload plus header, rounded up to 4 KB
// flash sectors.
constexpr uint32_t kSector = 4096;
constexpr uint32_t kSlotBytes =
    (tltl::kStorageSlotBytes + kSector - 1) / kSector * kSector;
constexpr uint32_t kSampleBytes =
    (tltl::kSampleAreaBytes + kSector - 1) / kSector * kSector;
constexpr uint32_t kProgramBytes = 4;

struct FileStorage {
  FILE* file;
};

int FileRead(void* ctx, uint32_t offset, void* dst, uint32_t len) {
  FILE* f = static_cast<FileStorage*>(ctx)->file;
  if (fseek(f, static_cast<long>(offset), SEEK_SET) != 0) return -1;
  return fread(dst, 1, len, f) == len ? 0 : -1;
}

int FileWrite(void* ctx, uint32_t offset, const void* src, uint32_t len) {
  FILE* f = static_cast<FileStorage*>(ctx)->file;
  if (offset % kProgramBytes != 0 || len % kProgramBytes != 0) {
    fprintf(stderr, "flash: unaligned write at %u (+%u)\n",
            static_cast<unsigned>(offset), static_cast<unsigned>(len));
    return -1;
  }
  uint8_t old[256];
  for (uint32_t done = 0; done < len;) {
    uint32_t n = len - done < sizeof(old) ? len - done : sizeof(old);
    if (FileRead(ctx, offset + done, old, n) != 0) return -1;
    for (uint32_t i = 0; i < n; ++i) {
      if (old[i] != 0xFF) {
        fprintf(stderr, "flash: write to unerased byte %u\n",
                static_cast<unsigned>(offset + done + i));
        return -1;
      }
    }
    done += n;
  }
  if (fseek(f, static_cast<long>(offset), SEEK_SET) != 0) return -1;
  if (fwrite(src, 1, len, f) != len) return -1;
  return fflush(f) == 0 ? 0 : -1;
}

int FileErase(void* ctx, uint32_t offset, uint32_t len) {
  FILE* f = static_cast<FileStorage*>(ctx)->file;
  if (offset % kSector != 0 || len % kSector != 0) {
    fprintf(stderr, "flash: unaligned erase at %u (+%u)\n",
            static_cast<unsigned>(offset), static_cast<unsigned>(len));
    return -1;
  }
  if (fseek(f, static_cast<long>(offset), SEEK_SET) != 0) return -1;
  uint8_t erased[256];
  memset(erased, 0xFF, sizeof(erased));
  while (len > 0) {
    uint32_t n = len < sizeof(erased) ? len : sizeof(erased);
    if (fwrite(erased, 1, n, f) != n) return -1;
    len -= n;
  }
  return fflush(f) == 0 ? 0 : -1;
}

FILE* OpenStorage(const char* path) {
  FILE* f = fopen(path, "r+b");
  if (f != nullptr) return f;
  f = fopen(path, "w+b");
  if (f == nullptr) return nullptr;
  FileStorage tmp = {f};
  return FileErase(&tmp, 0, 2 * kSlotBytes + kSampleBytes) == 0 ? f : nullptr;
}

int ReadByte(void*) { return getchar(); }

void WriteLine(void*, const char* line) {
  fputs(line, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s STORAGE_FILE\n", argv[0]);
    return 2;
  }
  FileStorage file = {OpenStorage(argv[1])};
  if (file.file == nullptr) {
    fprintf(stderr, "error: cannot open %s\n", argv[1]);
    return 2;
  }
  tl_storage_t storage = {&file,     kSlotBytes, kProgramBytes, FileRead,
                          FileWrite, FileErase,  kSector,       kSampleBytes};
  tltl::AppIo io = {nullptr, ReadByte, WriteLine};
  if (g_app.Begin(io, g_arena, sizeof(g_arena), &storage) != kTfLiteOk) {
    return 1;
  }
  // 'Q' is not an App command: it ends the session (the board has no end).
  for (;;) {
    int c = getchar();
    if (c == EOF || c == 'Q') break;
    ungetc(c, stdin);
    g_app.Poll();
  }
  fclose(file.file);
  return 0;
}
