// Reader for the golden files written by testdata/generate_goldens.py (format
// documented in tflite_tl/kernels/goldens.py). Host test code only.
#ifndef TFLM_KERNELS_TESTS_GOLDEN_READER_H_
#define TFLM_KERNELS_TESTS_GOLDEN_READER_H_

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tflite_tl {
namespace testing {

struct GoldenTensor {
  std::string dtype;
  std::vector<int32_t> shape;
  std::vector<double> values;  // exact for every stored dtype

  std::vector<float> AsFloat() const {
    return std::vector<float>(values.begin(), values.end());
  }
  template <typename T>
  std::vector<T> As() const {
    std::vector<T> out;
    out.reserve(values.size());
    for (double v : values) out.push_back(static_cast<T>(v));
    return out;
  }
  int32_t dim(int i) const { return shape.at(i); }
};

struct GoldenCase {
  std::string name;
  std::map<std::string, double> params;
  std::map<std::string, GoldenTensor> tensors;

  double param(const std::string& key) const {
    auto it = params.find(key);
    if (it == params.end()) throw std::runtime_error(name + ": no param " + key);
    return it->second;
  }
  double param_or(const std::string& key, double fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
  }
  const GoldenTensor& tensor(const std::string& key) const {
    auto it = tensors.find(key);
    if (it == tensors.end()) throw std::runtime_error(name + ": no tensor " + key);
    return it->second;
  }
  bool has_tensor(const std::string& key) const {
    return tensors.count(key) != 0;
  }
};

inline std::vector<GoldenCase> ReadGoldenCases(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot open golden file " + path);
  std::stringstream tokens;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line[0] == '#') continue;
    tokens << line << '\n';
  }
  std::vector<GoldenCase> cases;
  GoldenCase current;
  bool open = false;
  std::string word;
  while (tokens >> word) {
    if (word == "case") {
      current = GoldenCase();
      tokens >> current.name;
      open = true;
    } else if (!open) {
      throw std::runtime_error(path + ": expected 'case', got " + word);
    } else if (word == "param") {
      std::string key, value;
      tokens >> key >> value;
      current.params[key] = std::strtod(value.c_str(), nullptr);
    } else if (word == "tensor") {
      std::string tname;
      GoldenTensor t;
      int rank = 0;
      tokens >> tname >> t.dtype >> rank;
      int64_t count = 1;
      for (int i = 0; i < rank; ++i) {
        int32_t d = 0;
        tokens >> d;
        t.shape.push_back(d);
        count *= d;
      }
      t.values.resize(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        std::string v;
        if (!(tokens >> v)) throw std::runtime_error(path + ": truncated " + tname);
        // strtof first: a float32 golden value must be read as the exact
        // float32 it was written from.
        t.values[static_cast<size_t>(i)] =
            t.dtype == "f32" ? static_cast<double>(std::strtof(v.c_str(), nullptr))
                             : std::strtod(v.c_str(), nullptr);
      }
      current.tensors[tname] = t;
    } else if (word == "end") {
      cases.push_back(current);
      open = false;
    } else {
      throw std::runtime_error(path + ": unknown keyword " + word);
    }
  }
  if (open) throw std::runtime_error(path + ": case without 'end'");
  return cases;
}

}  // namespace testing
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_TESTS_GOLDEN_READER_H_
