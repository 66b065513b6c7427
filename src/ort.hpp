// A thin layer over the ONNX Runtime C API: one process-wide env, one session per graph, and
// runs that take int64 [B, T] (and [B]) inputs and give float32 outputs. Every OrtStatus
// becomes Error(ROUTERM_ERR_RUNTIME) with ONNX Runtime's message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct OrtSession;
struct OrtSessionOptions;
struct OrtEnv;

namespace routerm {

struct SessionConfig {
    int intra_op_threads = 0, inter_op_threads = 0;
    std::string provider = "cpu";
    int device_id = 0;
};

struct Tensor {   // a named int64 input
    std::string name;
    std::vector<int64_t> data;
    std::vector<int64_t> shape;
};

struct Output {   // a float32 output
    std::vector<float> data;
    std::vector<int64_t> shape;
};

class Session {
public:
    Session(const std::string &path, const SessionConfig &config);
    ~Session();
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    // Run with `inputs`; returns the outputs named in `outputs`, in that order.
    std::vector<Output> run(const std::vector<Tensor> &inputs, const std::vector<std::string> &outputs) const;

private:
    std::shared_ptr<OrtEnv> env_;
    OrtSession *session_ = nullptr;
    std::string path_;
};

}  // namespace routerm
