// tl_tflm_runner: runs a .tflite model in TFLite Micro built from TFLM_ROOT,
// with every builtin op TFLM's MicroMutableOpResolver can add and the
// tflite-tl training ops (TL_*), under TFLM's RecordingMicroAllocator.
// The host-side backend of tflite_tl.tflm for models the tflite_micro wheel
// cannot run (tflite_tl/tflm/native.py writes the request and reads the
// result).
//
// Usage: tl_tflm_runner REQUEST_DIR
//
// REQUEST_DIR/request.txt, one "key value" per line:
//   arena_size N       bytes of tensor arena
//   steps S            invokes of model.tflite, state kept between them
//   extra_invoke 0|1   one more invoke on the last step's inputs (its
//                      outputs are written as step S)
//   measure 0|1        a separate interpreter on measured.tflite, one invoke
//                      on step 0's inputs, then the recording allocator's
//                      report (PrintAllocations) into allocations.txt
//   read_variables 0|1 write the final value of every is_variable tensor
// REQUEST_DIR/in<i>_<s>.raw: the raw bytes of input i at step s (exactly the
//   tensor's size). Writes out<o>_<s>.raw and var<k>.raw, described in
//   result.txt:
//   output <o> <TYPE> <rank> <dims...>
//   variable <k> <TYPE> <rank> <dims...> <name>
//
// Variable tensors (is_variable=true) are zero-filled by AllocateTensors;
// one whose flatbuffer buffer holds exactly its size is then loaded with
// that buffer: a lowered train step carries its parameters' initial values
// there.
//
// Exit status: 0 on success; 1 with an "error: ..." line (after whatever
// TFLM printed) if the model fails to load, allocate, prepare or invoke.
//
// Built with -DTL_RUNNER_SEMIHOSTED (tflite_tl/tflm/semihosted.py) the same
// program is Cortex-M4F firmware for QEMU's mps2-an386: REQUEST_DIR is the
// semihosting command line, files are the host's (semihosting), TFLM's
// MicroPrintf goes to stderr through the debug-log callback, and the last
// line on stdout is "tl_tflm_runner exit <status>" (semihosting's exit does
// not carry the status).
#ifdef TL_RUNNER_SEMIHOSTED
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#else
#include <fcntl.h>
#include <unistd.h>
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tensorflow/lite/micro/arena_allocator/recording_single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_arena_constants.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"
#include "tensorflow/lite/micro/micro_utils.h"
#include "tensorflow/lite/micro/recording_micro_allocator.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace {

// tl_tflm_builtin_ops.inc is generated at build time from TFLM_ROOT's
// micro_mutable_op_resolver.h: one TL_TFLM_OP(Name) per Add<Name>() that
// takes no arguments, i.e. every op this TFLM version can register.
constexpr unsigned int kNumBuiltinOps = 0
#define TL_TFLM_OP(name) +1
#include "tl_tflm_builtin_ops.inc"
#undef TL_TFLM_OP
    ;

// RecordingMicroAllocator::Create places its own three objects in the arena
// without checking that they fit: a smaller arena would crash TFLM.
constexpr size_t kAllocatorBytes =
    sizeof(tflite::RecordingSingleArenaBufferAllocator) +
    sizeof(tflite::GreedyMemoryPlanner) +
    sizeof(tflite::RecordingMicroAllocator) + 4 * tflite::MicroArenaBufferAlignment();

using Resolver = tflite::MicroMutableOpResolver<
    kNumBuiltinOps + tflite_tl::tflm::kNumTrainingOps>;

int Fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s\n", message.c_str());
  std::fflush(stderr);
  return 1;
}

bool AddAllOps(Resolver& resolver, std::string* failed) {
#define TL_TFLM_OP(name)                       \
  if (resolver.Add##name() != kTfLiteOk) {     \
    *failed = "Add" #name;                     \
    return false;                              \
  }
#include "tl_tflm_builtin_ops.inc"
#undef TL_TFLM_OP
  if (tflite_tl::tflm::AddTrainingOps(resolver) != kTfLiteOk) {
    *failed = "AddTrainingOps";
    return false;
  }
  return true;
}

// A heap buffer with the alignment flatbuffers and the arena need (16 B;
// malloc'd and aligned by hand: newlib has no aligned_alloc). ``data`` is
// null when the heap cannot hold it.
struct Buffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  explicit Buffer(size_t n) : size(n) {
    block_ = static_cast<uint8_t*>(std::malloc(n + 16));
    if (block_ != nullptr) {
      const uintptr_t address = reinterpret_cast<uintptr_t>(block_);
      data = block_ + ((16 - address % 16) % 16);
    }
  }
  ~Buffer() { std::free(block_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

 private:
  uint8_t* block_ = nullptr;
};

bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  out->clear();
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) {
    out->insert(out->end(), chunk, chunk + n);
  }
  const bool ok = std::ferror(f) == 0;
  std::fclose(f);
  return ok;
}

bool WriteFile(const std::string& path, const void* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

struct Request {
  size_t arena_size = 0;
  int steps = 0;
  bool extra_invoke = false;
  bool measure = false;
  bool read_variables = false;
};

bool ParseRequest(const std::string& path, Request* r, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    *error = "cannot open " + path;
    return false;
  }
  char key[64];
  // %ld, not %lld or %zu: newlib's stdio (the Cortex-M4F build) has no C99
  // length modifiers; the values here fit a 32-bit long.
  long value;  // NOLINT(runtime/int): fscanf's %ld
  bool ok = true;
  while (ok && std::fscanf(f, "%63s %ld", key, &value) == 2) {
    const std::string k = key;
    if (k == "arena_size") {
      r->arena_size = static_cast<size_t>(value);
    } else if (k == "steps") {
      r->steps = static_cast<int>(value);
    } else if (k == "extra_invoke") {
      r->extra_invoke = value != 0;
    } else if (k == "measure") {
      r->measure = value != 0;
    } else if (k == "read_variables") {
      r->read_variables = value != 0;
    } else {
      *error = path + ": unknown key " + k;
      ok = false;
    }
  }
  std::fclose(f);
  if (ok && (r->arena_size == 0 || r->steps < 0)) {
    *error = path + ": needs arena_size > 0 and steps >= 0";
    ok = false;
  }
  return ok;
}

// A model file, kept alive (and aligned) as long as its interpreters.
struct LoadedModel {
  Buffer* buffer = nullptr;
  const tflite::Model* model = nullptr;
  ~LoadedModel() { delete buffer; }
};

// Reads the file straight into an aligned buffer (no second copy: on the
// board the model and the arena share one heap).
bool LoadModel(const std::string& path, LoadedModel* m, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "rb");
  long size = -1;  // NOLINT(runtime/int): ftell's type
  if (f != nullptr && std::fseek(f, 0, SEEK_END) == 0) size = std::ftell(f);
  if (size <= 0 || std::fseek(f, 0, SEEK_SET) != 0) {
    if (f != nullptr) std::fclose(f);
    *error = "cannot read model " + path;
    return false;
  }
  m->buffer = new Buffer(static_cast<size_t>(size));
  const bool read =
      m->buffer->data != nullptr &&
      std::fread(m->buffer->data, 1, m->buffer->size, f) == m->buffer->size;
  std::fclose(f);
  if (!read) {
    *error = m->buffer->data == nullptr
                 ? "no heap for the " + std::to_string(size) + "-byte model " +
                       path
                 : "cannot read model " + path;
    return false;
  }
  flatbuffers::Verifier verifier(m->buffer->data, m->buffer->size);
  if (!tflite::VerifyModelBuffer(verifier)) {
    *error = path + " is not a valid .tflite flatbuffer";
    return false;
  }
  m->model = tflite::GetModel(m->buffer->data);
  if (m->model->version() != TFLITE_SCHEMA_VERSION) {
    *error = path + " has schema version " +
             std::to_string(m->model->version()) + ", TFLM supports " +
             std::to_string(TFLITE_SCHEMA_VERSION);
    return false;
  }
  if (m->model->subgraphs() == nullptr || m->model->subgraphs()->size() == 0) {
    *error = path + " has no subgraph";
    return false;
  }
  return true;
}

// Unique VAR_HANDLE shared names in all subgraphs: the resource variables
// TFLM needs slots for (the tflite_micro wheel counts them the same way).
int CountResourceVariables(const tflite::Model* model) {
  std::vector<std::string> names;
  const auto* codes = model->operator_codes();
  for (const tflite::SubGraph* sg : *model->subgraphs()) {
    if (sg->operators() == nullptr || codes == nullptr) continue;
    for (const tflite::Operator* op : *sg->operators()) {
      if (op->opcode_index() >= codes->size()) continue;
      if (tflite::GetBuiltinCode(codes->Get(op->opcode_index())) !=
          tflite::BuiltinOperator_VAR_HANDLE) {
        continue;
      }
      const auto* options = op->builtin_options_as_VarHandleOptions();
      const std::string name = options != nullptr &&
                                       options->shared_name() != nullptr
                                   ? options->shared_name()->str()
                                   : std::string();
      bool seen = false;
      for (const std::string& n : names) seen = seen || n == name;
      if (!seen) names.push_back(name);
    }
  }
  return static_cast<int>(names.size());
}

// The recording interpreter, plus access to subgraph 0's tensors through the
// context, as kernels see them. (MicroInterpreter::GetTensor needs the
// preserve-all-tensors planner, which would change the arena; the variable
// tensors read here are persistent anyway.)
class Interpreter : public tflite::RecordingMicroInterpreter {
 public:
  using tflite::RecordingMicroInterpreter::RecordingMicroInterpreter;
  TfLiteEvalTensor* EvalTensor(int index) const {
    return context().GetEvalTensor(&context(), index);
  }
};

// One interpreter on its own arena, built like the tflite_micro wheel's
// (recording allocator, then the resource variables, then the interpreter),
// so that both report the same arena for the same model.
class Session {
 public:
  Session(const tflite::Model* model, const Resolver& resolver,
          size_t arena_size)
      : model_(model), arena_(arena_size) {
    if (arena_.data == nullptr || arena_size < kAllocatorBytes) return;
    allocator_ =
        tflite::RecordingMicroAllocator::Create(arena_.data, arena_.size);
    if (allocator_ == nullptr) return;
    const int num_variables = CountResourceVariables(model);
    if (num_variables > 0) {
      variables_ =
          tflite::MicroResourceVariables::Create(allocator_, num_variables);
    }
    interpreter_ = new Interpreter(model, resolver, allocator_, variables_);
  }
  ~Session() { delete interpreter_; }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool Allocate(std::string* error) {
    if (arena_.data == nullptr) {
      *error = "no heap for an arena of " + std::to_string(arena_.size) +
               " bytes";
      return false;
    }
    if (interpreter_ == nullptr) {
      *error = "an arena of " + std::to_string(arena_.size) +
               " bytes is smaller than TFLM's allocator itself (" +
               std::to_string(kAllocatorBytes) + " bytes)";
      return false;
    }
    if (interpreter_->AllocateTensors() != kTfLiteOk) {
      *error = "AllocateTensors failed (arena " +
               std::to_string(arena_.size) + " bytes)";
      return false;
    }
    return LoadVariableTensors(error);
  }

  bool SetInputs(const std::string& dir, int step, std::string* error) {
    std::vector<uint8_t> data;
    for (size_t i = 0; i < interpreter_->inputs_size(); ++i) {
      const std::string path = dir + "/in" + std::to_string(i) + "_" +
                               std::to_string(step) + ".raw";
      TfLiteTensor* t = interpreter_->input(i);
      if (!ReadFile(path, &data)) {
        *error = "cannot read " + path;
        return false;
      }
      if (t == nullptr || data.size() != t->bytes) {
        *error = path + " has " + std::to_string(data.size()) +
                 " bytes; input " + std::to_string(i) + " (" +
                 (t ? TfLiteTypeGetName(t->type) : "?") + ") needs " +
                 std::to_string(t ? t->bytes : 0);
        return false;
      }
      if (!data.empty()) std::memcpy(t->data.raw, data.data(), data.size());
    }
    return true;
  }

  bool Invoke(int step, std::string* error) {
    if (interpreter_->Invoke() != kTfLiteOk) {
      *error = "Invoke failed at step " + std::to_string(step);
      return false;
    }
    return true;
  }

  bool WriteOutputs(const std::string& dir, int step, FILE* manifest,
                    std::string* error) {
    for (size_t o = 0; o < interpreter_->outputs_size(); ++o) {
      const TfLiteTensor* t = interpreter_->output(o);
      const std::string path = dir + "/out" + std::to_string(o) + "_" +
                               std::to_string(step) + ".raw";
      if (!WriteFile(path, t->data.raw, t->bytes)) {
        *error = "cannot write " + path;
        return false;
      }
      if (step == 0) {
        std::fprintf(manifest, "output %u %s", static_cast<unsigned>(o),
                     TfLiteTypeGetName(t->type));
        WriteDims(manifest, t->dims);
        std::fprintf(manifest, "\n");
      }
    }
    return true;
  }

  bool WriteVariables(const std::string& dir, FILE* manifest,
                      std::string* error) {
    const tflite::SubGraph* sg = model_->subgraphs()->Get(0);
    int k = 0;
    for (size_t i = 0; sg->tensors() != nullptr && i < sg->tensors()->size();
         ++i) {
      const tflite::Tensor* ft = sg->tensors()->Get(i);
      if (!ft->is_variable()) continue;
      const TfLiteEvalTensor* t = EvalTensor(i);
      const std::string path = dir + "/var" + std::to_string(k) + ".raw";
      if (t == nullptr || !WriteFile(path, t->data.raw, tflite::EvalTensorBytes(t))) {
        *error = "cannot read back variable tensor " + std::to_string(i);
        return false;
      }
      std::fprintf(manifest, "variable %d %s", k, TfLiteTypeGetName(t->type));
      WriteDims(manifest, t->dims);
      std::fprintf(manifest, " %s\n",
                   ft->name() != nullptr ? ft->name()->c_str() : "");
      ++k;
    }
    return true;
  }

  void PrintAllocations() const {
    interpreter_->GetMicroAllocator().PrintAllocations();
  }

 private:
  TfLiteEvalTensor* EvalTensor(size_t index) const {
    return interpreter_->EvalTensor(static_cast<int>(index));
  }

  static void WriteDims(FILE* f, const TfLiteIntArray* dims) {
    std::fprintf(f, " %d", dims->size);
    for (int d = 0; d < dims->size; ++d) std::fprintf(f, " %d", dims->data[d]);
  }

  // TFLM zero-fills variable tensors in AllocateTensors; give those whose
  // buffer carries exactly their bytes that initial value.
  bool LoadVariableTensors(std::string* error) {
    const tflite::SubGraph* sg = model_->subgraphs()->Get(0);
    const auto* buffers = model_->buffers();
    if (sg->tensors() == nullptr || buffers == nullptr) return true;
    for (size_t i = 0; i < sg->tensors()->size(); ++i) {
      const tflite::Tensor* ft = sg->tensors()->Get(i);
      if (!ft->is_variable() || ft->buffer() >= buffers->size()) continue;
      const tflite::Buffer* b = buffers->Get(ft->buffer());
      if (b == nullptr || b->data() == nullptr || b->data()->size() == 0) {
        continue;
      }
      TfLiteEvalTensor* t = EvalTensor(i);
      if (t == nullptr) {
        *error = "variable tensor " + std::to_string(i) + " not allocated";
        return false;
      }
      if (b->data()->size() == tflite::EvalTensorBytes(t)) {
        std::memcpy(t->data.raw, b->data()->data(), b->data()->size());
      }
    }
    return true;
  }

  const tflite::Model* model_;
  Buffer arena_;
  tflite::RecordingMicroAllocator* allocator_ = nullptr;
  tflite::MicroResourceVariables* variables_ = nullptr;
  Interpreter* interpreter_ = nullptr;
};

#ifdef TL_RUNNER_SEMIHOSTED
// MicroPrintf reaches the debug-log callback; it writes to g_log (stderr, or
// the allocations file while PrintAllocationsTo runs).
FILE* g_log = nullptr;

void WriteLog(const char* s) { std::fputs(s, g_log != nullptr ? g_log : stderr); }

bool PrintAllocationsTo(const Session& session, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  g_log = f;
  session.PrintAllocations();
  g_log = nullptr;
  return std::fclose(f) == 0;
}
#else
// PrintAllocations writes through MicroPrintf to stderr: capture it at the
// file descriptor.
bool PrintAllocationsTo(const Session& session, const std::string& path) {
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (saved < 0 || fd < 0) return false;
  dup2(fd, 2);
  session.PrintAllocations();
  std::fflush(stderr);
  dup2(saved, 2);
  close(fd);
  close(saved);
  return true;
}
#endif

int Run(const std::string& dir) {
  std::string error;
  Request request;
  if (!ParseRequest(dir + "/request.txt", &request, &error)) return Fail(error);
  static Resolver resolver;
  if (!AddAllOps(resolver, &error)) {
    return Fail("registering ops failed at " + error);
  }

  if (request.measure) {
    LoadedModel measured;
    if (!LoadModel(dir + "/measured.tflite", &measured, &error)) {
      return Fail(error);
    }
    Session session(measured.model, resolver, request.arena_size);
    if (!session.Allocate(&error) || !session.SetInputs(dir, 0, &error) ||
        !session.Invoke(0, &error)) {
      return Fail("measuring the arena: " + error);
    }
    if (!PrintAllocationsTo(session, dir + "/allocations.txt")) {
      return Fail("cannot write " + dir + "/allocations.txt");
    }
  }

  if (request.steps == 0) return 0;
  LoadedModel model;
  if (!LoadModel(dir + "/model.tflite", &model, &error)) return Fail(error);
  Session session(model.model, resolver, request.arena_size);
  if (!session.Allocate(&error)) return Fail(error);
  const std::string manifest_path = dir + "/result.txt";
  FILE* manifest = std::fopen(manifest_path.c_str(), "w");
  if (manifest == nullptr) return Fail("cannot write " + manifest_path);
  const int invokes = request.steps + (request.extra_invoke ? 1 : 0);
  bool ok = true;
  for (int step = 0; ok && step < invokes; ++step) {
    const int input_step = step < request.steps ? step : request.steps - 1;
    ok = session.SetInputs(dir, input_step, &error) &&
         session.Invoke(step, &error) &&
         session.WriteOutputs(dir, step, manifest, &error);
  }
  if (ok && request.read_variables) {
    ok = session.WriteVariables(dir, manifest, &error);
  }
  if (std::fclose(manifest) != 0 && ok) {
    error = "cannot write " + manifest_path;
    ok = false;
  }
  return ok ? 0 : Fail(error);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef TL_RUNNER_SEMIHOSTED
  RegisterDebugLogCallback(WriteLog);
#endif
  int status = 2;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s REQUEST_DIR\n", argc > 0 ? argv[0] : "");
  } else {
    status = Run(argv[1]);
  }
#ifdef TL_RUNNER_SEMIHOSTED
  std::fflush(stderr);
  std::printf("tl_tflm_runner exit %d\n", status);
  std::fflush(stdout);
#endif
  return status;
}
