// Bare-metal start-up of tl_tflm_runner built for Cortex-M4F and run in
// QEMU's mps2-an386 board with semihosting (newlib's rdimon): the vector
// table, the reset handler, and a heap over the board's 16 MB PSRAM, so that
// TFLM's arena, the model and its inputs are allocated with the 32-bit
// pointers and struct layouts of the target (see
// tflite_tl/tflm/semihosted.py for the memory layout).
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

void _start(void);  // newlib rdimon crt0: clears .bss, argv, calls main
extern uint32_t __stack;
extern uint32_t __data_load__, __data_start__, __data_end__;
extern char __tl_heap_start[], __tl_heap_end[];

void ResetHandler(void) {
  // Grant full access to the FPU (CP10, CP11) before any float instruction.
  *(volatile uint32_t*)0xE000ED88u |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
  uint32_t* src = &__data_load__;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  _start();
}

static void Hang(void) {
  for (;;) {
  }
}

__attribute__((section(".vectors"), used)) void* const kVectors[16] = {
    &__stack,   (void*)ResetHandler, (void*)Hang, (void*)Hang,
    (void*)Hang, (void*)Hang,        (void*)Hang, NULL,
    NULL,        NULL,               NULL,        (void*)Hang,
    (void*)Hang, NULL,               (void*)Hang, (void*)Hang};

// newlib's own _sbrk refuses to grow the heap past the stack pointer; this
// heap lives in PSRAM, above the stack (in SSRAM2/3), so it has its own.
void* _sbrk(ptrdiff_t increment) {
  static char* brk = __tl_heap_start;
  if (increment > __tl_heap_end - brk) {
    errno = ENOMEM;
    return (void*)-1;
  }
  char* previous = brk;
  brk += increment;
  return previous;
}
