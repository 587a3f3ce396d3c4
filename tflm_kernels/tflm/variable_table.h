// The variable table: how a runtime finds the variable tensors of a graph.
//
// TFLM allocates variable tensors (is_variable) in the arena's persistent
// area and zero-fills them; outside code cannot reach them (the
// interpreter's GetTensor works only when every tensor is preserved). The
// kernel-flavor graphs therefore start with one TL_VARIABLES op whose inputs
// are all of the graph's variable tensors, in the order of the graph's
// tflite_tl metadata. When the interpreter's external context is a
// VariableTable (MicroInterpreter::SetMicroExternalContext, before
// AllocateTensors), its Prepare records each variable's eval tensor and size
// there. TFLM gives variable tensors their buffers only after every Prepare
// (when it commits the memory plan), so the runtime reads
// ``tensors[i]->data`` once AllocateTensors has returned: it copies the
// initial values from the model's buffers in, and reads or saves the trained
// values at any time. Eval does nothing. Without a table the op only checks
// its inputs.
#ifndef TFLM_KERNELS_TFLM_VARIABLE_TABLE_H_
#define TFLM_KERNELS_TFLM_VARIABLE_TABLE_H_

#include <stdint.h>

#include "tensorflow/lite/c/common.h"

namespace tflite_tl {
namespace tflm {

struct VariableTable {
  static constexpr uint32_t kMagic = 0x544c5654u;  // "TLVT"
  uint32_t magic = kMagic;
  int32_t capacity = 0;  // entries of data/bytes
  int32_t count = 0;     // written by TL_VARIABLES' Prepare
  TfLiteEvalTensor** tensors = nullptr;
  uint32_t* bytes = nullptr;
};

}  // namespace tflm
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_TFLM_VARIABLE_TABLE_H_
