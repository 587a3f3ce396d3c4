// TL_VARIABLES: records where TFLM put the graph's variable tensors (see
// variable_table.h).
//
// in:  every variable tensor of the graph   out: none   options: none
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"
#include "tflm_kernels/tflm/variable_table.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_VARIABLES";

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->outputs->size == 0, "%s: expects no outputs, got %d",
                 kOp, node->outputs->size);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  auto* table = static_cast<VariableTable*>(micro_context->external_context());
  if (table != nullptr && table->magic != VariableTable::kMagic) {
    table = nullptr;  // another component's external context: leave it alone
  }
  if (table != nullptr) {
    TL_TFLM_ENSURE(table->capacity >= node->inputs->size &&
                       table->tensors != nullptr && table->bytes != nullptr,
                   "%s: the variable table holds %d entries, the graph has "
                   "%d variables", kOp, static_cast<int>(table->capacity),
                   node->inputs->size);
  }
  for (int i = 0; i < node->inputs->size; ++i) {
    TfLiteTensor* t = micro_context->AllocateTempInputTensor(node, i);
    TL_TFLM_ENSURE(t != nullptr, "%s: input %d is missing", kOp, i);
    const bool variable = t->is_variable;
    const size_t bytes = t->bytes;
    micro_context->DeallocateTempTfLiteTensor(t);
    TL_TFLM_ENSURE(variable, "%s: input %d is not a variable tensor", kOp, i);
    if (table != nullptr) {
      table->tensors[i] = micro_context->GetEvalTensor(node->inputs->data[i]);
      table->bytes[i] = static_cast<uint32_t>(bytes);
    }
  }
  if (table != nullptr) table->count = node->inputs->size;
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext*, TfLiteNode*) { return kTfLiteOk; }

}  // namespace

TFLMRegistration* Register_TL_VARIABLES() {
  static TFLMRegistration r = tflite::micro::RegisterOp(nullptr, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
