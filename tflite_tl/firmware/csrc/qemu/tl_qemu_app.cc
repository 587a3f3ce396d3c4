// tl_qemu_app: the exported library's serial App (tl_app.h) as bare-metal
// Cortex-M4F firmware for QEMU's mps2-an386 board, linked with a linker
// script that carries a real board's SRAM and flash (see
// tflite_tl/firmware/cortex_m.py). The serial session comes from a host file
// read through semihosting (newlib's rdimon), answers go to semihosting
// stdout, and every command is timed in SysTick ticks of QEMU's virtual
// clock, which -icount advances by a fixed amount per instruction: the
// counts are deterministic.
//
// Usage: qemu-system-arm ... -kernel tl_qemu_app.elf -append SESSION_FILE
// (semihosting's command line is the kernel's path, then -append's words).
// Prints the App's lines, and after each command one line
//   icount <command byte> <ticks>
// plus, first, "calibration <ticks> <instructions>" of a 2-instruction loop,
// so ticks convert to instructions.
//
// The parameter storage is the end of the flash region, where the board
// keeps it (the linker script's __tl_storage_start/__tl_storage_end); QEMU's
// "flash" is RAM, so it is written in place.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tl_app.h"
#include "tl_model_config.h"
#include "tl_persist.h"

extern "C" {
void _start(void);  // newlib rdimon crt0: clears .bss, calls main, exit()
extern uint32_t __stack;
extern uint32_t __data_load__, __data_start__, __data_end__;
extern uint8_t __tl_storage_start[], __tl_storage_end[];

volatile uint32_t g_systick_wraps = 0;

void SysTickHandler(void) { g_systick_wraps = g_systick_wraps + 1; }

void ResetHandler(void) {
  // Grant full access to the FPU (CP10, CP11) before any float instruction.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88u) |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
  // .data is linked into flash and runs from RAM, as on the board.
  uint32_t* src = &__data_load__;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  _start();
}

static void Hang(void) {
  for (;;) {
  }
}

// Initial stack pointer, reset, the exception handlers (none expected) and
// SysTick, which counts the wraps of its 24-bit counter.
__attribute__((section(".vectors"), used)) void* const kVectors[16] = {
    &__stack,
    reinterpret_cast<void*>(ResetHandler),
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang),
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang),
    reinterpret_cast<void*>(Hang), nullptr, nullptr, nullptr, nullptr,
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang), nullptr,
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(SysTickHandler)};
}

namespace {

volatile uint32_t* const kSysTick = reinterpret_cast<uint32_t*>(0xE000E010u);
constexpr uint32_t kReload = 0x00FFFFFFu;

void StartSysTick() {
  kSysTick[1] = kReload;  // LOAD
  kSysTick[2] = 0;        // VAL
  kSysTick[0] = 7u;       // CTRL: enable, wrap interrupt, processor clock
  while (kSysTick[2] == 0) {
  }  // the first reload: the count starts at a period's start
}

volatile uint32_t* const kIcsr = reinterpret_cast<uint32_t*>(0xE000ED04u);
constexpr uint32_t kPendSysTick = 1u << 26;

// Ticks since StartSysTick (64-bit: long commands wrap the 24-bit counter,
// whose interrupt counts the wraps). The counter runs LOAD..1, reaches 0 at
// the end of a period (the wrap interrupt) and reloads on the next tick.
uint64_t Now() {
  for (;;) {
    const uint32_t wraps = g_systick_wraps;
    const uint32_t value = kSysTick[2];
    const bool pending = (*kIcsr & kPendSysTick) != 0;
    if (wraps != g_systick_wraps) continue;
    uint64_t in_period = value == 0 ? (pending ? kReload + 1ull : 0)
                                    : kReload + 1ull - value;
    return static_cast<uint64_t>(wraps) * (kReload + 1ull) + in_period;
  }
}

alignas(16) uint8_t g_arena[tltl::kArenaBytes];
tltl::App g_app;
FILE* g_session = nullptr;

int StorageRead(void*, uint32_t offset, void* dst, uint32_t len) {
  memcpy(dst, __tl_storage_start + offset, len);
  return 0;
}

int StorageWrite(void*, uint32_t offset, const void* src, uint32_t len) {
  memcpy(__tl_storage_start + offset, src, len);
  return 0;
}

int StorageErase(void*, uint32_t offset, uint32_t len) {
  memset(__tl_storage_start + offset, 0xFF, len);
  return 0;
}

int ReadByte(void*) { return fgetc(g_session); }

void WriteLine(void*, const char* line) {
  fputs(line, stdout);
  fputc('\n', stdout);
}

}  // namespace

int main(int argc, char** argv) {
  StartSysTick();
  // Calibration: a loop of exactly 2 instructions per iteration.
  constexpr uint32_t kLoops = 100000;
  uint64_t start = Now();
  uint32_t n = kLoops;
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
  uint64_t end = Now();
  printf("calibration %lu %lu\n", static_cast<unsigned long>(end - start),
         static_cast<unsigned long>(2 * kLoops));
  const char* path = argc > 1 ? argv[1] : "session.bin";
  g_session = fopen(path, "rb");
  if (g_session == nullptr) {
    printf("error: cannot open session file %s\n", path);
    return 1;
  }
  const uint32_t storage_bytes =
      static_cast<uint32_t>(__tl_storage_end - __tl_storage_start);
  // Two parameter slots, then the sample area (flash mode only).
  const uint32_t slot = storage_bytes < tltl::kSampleAreaBytes
                            ? 0
                            : (storage_bytes - tltl::kSampleAreaBytes) / 2;
  if (slot < tltl::kStorageSlotBytes) {
    printf("error: %lu bytes of parameter storage, need 2 x %lu\n",
           static_cast<unsigned long>(storage_bytes),
           static_cast<unsigned long>(tltl::kStorageSlotBytes));
    return 1;
  }
  StorageErase(nullptr, 0, storage_bytes);
  tl_storage_t storage = {nullptr,      slot, 1,    StorageRead,
                          StorageWrite, StorageErase, 4096, tltl::kSampleAreaBytes};
  tltl::AppIo io = {nullptr, ReadByte, WriteLine};
  start = Now();
  if (g_app.Begin(io, g_arena, sizeof(g_arena), &storage) != kTfLiteOk) {
    return 1;
  }
  printf("icount B %llu\n", static_cast<unsigned long long>(Now() - start));
  for (;;) {
    int c = fgetc(g_session);
    if (c == EOF || c == 'Q') break;
    ungetc(c, g_session);
    start = Now();
    g_app.Poll();
    end = Now();
    if (c > ' ') {
      printf("icount %c %llu\n", c, static_cast<unsigned long long>(end - start));
    }
  }
  printf("done\n");
  fclose(g_session);
  return 0;
}
