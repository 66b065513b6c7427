#include "ort.hpp"

#include <onnxruntime_c_api.h>

#include <mutex>

#include "error.hpp"

namespace routerm {

namespace {

// The headers' API version: a newer library serves older versions, an older one returns NULL.
const OrtApi &api() {
    static const OrtApi *ptr = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (!ptr)
        throw Error(ROUTERM_ERR_RUNTIME, std::string("the ONNX Runtime library (") + OrtGetApiBase()->GetVersionString() +
                                             ") does not provide C API version " + std::to_string(ORT_API_VERSION) +
                                             " (built against newer headers)");
    return *ptr;
}

void check(OrtStatus *status, const std::string &what) {
    if (!status) return;
    std::string message = api().GetErrorMessage(status);
    api().ReleaseStatus(status);
    throw Error(ROUTERM_ERR_RUNTIME, what + ": " + message);
}

// One OrtEnv for the process, shared by every engine and freed with the last one.
std::shared_ptr<OrtEnv> shared_env() {
    static std::mutex lock;
    static std::weak_ptr<OrtEnv> current;
    std::lock_guard<std::mutex> guard(lock);
    if (auto env = current.lock()) return env;
    OrtEnv *raw = nullptr;
    check(api().CreateEnv(ORT_LOGGING_LEVEL_WARNING, "routerm", &raw), "creating the ONNX Runtime environment");
    std::shared_ptr<OrtEnv> env(raw, [](OrtEnv *e) { api().ReleaseEnv(e); });
    current = env;
    return env;
}

template <typename T, void(ORT_API_CALL *OrtApi::*Release)(T *)>
struct Owned {
    T *ptr = nullptr;
    ~Owned() { if (ptr) (api().*Release)(ptr); }
};

void add_provider(OrtSessionOptions *options, const SessionConfig &config) {
    const OrtApi &a = api();
    const std::string &p = config.provider;
    std::string device = std::to_string(config.device_id);
    if (p.empty() || p == "cpu" || p == "CPUExecutionProvider") return;
    if (p == "cuda" || p == "CUDAExecutionProvider") {
        Owned<OrtCUDAProviderOptionsV2, &OrtApi::ReleaseCUDAProviderOptions> cuda;
        check(a.CreateCUDAProviderOptions(&cuda.ptr), "CUDA provider options");
        const char *keys[] = {"device_id"};
        const char *values[] = {device.c_str()};
        check(a.UpdateCUDAProviderOptions(cuda.ptr, keys, values, 1), "CUDA provider options");
        check(a.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda.ptr), "adding the CUDA provider");
        return;
    }
    if (p == "tensorrt" || p == "TensorrtExecutionProvider") {
        Owned<OrtTensorRTProviderOptionsV2, &OrtApi::ReleaseTensorRTProviderOptions> trt;
        check(a.CreateTensorRTProviderOptions(&trt.ptr), "TensorRT provider options");
        const char *keys[] = {"device_id"};
        const char *values[] = {device.c_str()};
        check(a.UpdateTensorRTProviderOptions(trt.ptr, keys, values, 1), "TensorRT provider options");
        check(a.SessionOptionsAppendExecutionProvider_TensorRT_V2(options, trt.ptr), "adding the TensorRT provider");
        return;
    }
    // Any other provider ONNX Runtime registers by name (e.g. "OpenVINO", "QNN", "XNNPACK").
    check(a.SessionOptionsAppendExecutionProvider(options, p.c_str(), nullptr, nullptr, 0), "adding provider '" + p + "'");
}

}  // namespace

Session::Session(const std::string &path, const SessionConfig &config) : env_(shared_env()), path_(path) {
    const OrtApi &a = api();
    Owned<OrtSessionOptions, &OrtApi::ReleaseSessionOptions> options;
    check(a.CreateSessionOptions(&options.ptr), "session options");
    if (config.intra_op_threads > 0) check(a.SetIntraOpNumThreads(options.ptr, config.intra_op_threads), "intra-op threads");
    if (config.inter_op_threads > 0) check(a.SetInterOpNumThreads(options.ptr, config.inter_op_threads), "inter-op threads");
    add_provider(options.ptr, config);
    check(a.CreateSession(env_.get(), path.c_str(), options.ptr, &session_), "loading '" + path + "'");
}

Session::~Session() {
    if (session_) api().ReleaseSession(session_);
}

std::vector<Output> Session::run(const std::vector<Tensor> &inputs, const std::vector<std::string> &outputs) const {
    const OrtApi &a = api();
    Owned<OrtMemoryInfo, &OrtApi::ReleaseMemoryInfo> memory;
    check(a.CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory.ptr), "CPU memory info");

    std::vector<Owned<OrtValue, &OrtApi::ReleaseValue>> in(inputs.size());
    std::vector<const char *> in_names;
    std::vector<const OrtValue *> in_values;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor &t = inputs[i];
        // ORT only reads inputs; the API takes a non-const pointer.
        check(a.CreateTensorWithDataAsOrtValue(memory.ptr, const_cast<int64_t *>(t.data.data()), t.data.size() * sizeof(int64_t),
                                               t.shape.data(), t.shape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, &in[i].ptr),
              "input '" + t.name + "'");
        in_names.push_back(t.name.c_str());
        in_values.push_back(in[i].ptr);
    }
    std::vector<const char *> out_names;
    for (const std::string &o : outputs) out_names.push_back(o.c_str());
    std::vector<OrtValue *> raw_out(outputs.size(), nullptr);
    OrtStatus *status = a.Run(session_, nullptr, in_names.data(), in_values.data(), in_values.size(), out_names.data(),
                              out_names.size(), raw_out.data());
    std::vector<Owned<OrtValue, &OrtApi::ReleaseValue>> out(outputs.size());
    for (size_t i = 0; i < raw_out.size(); ++i) out[i].ptr = raw_out[i];
    check(status, "running '" + path_ + "'");

    std::vector<Output> result(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
        Owned<OrtTensorTypeAndShapeInfo, &OrtApi::ReleaseTensorTypeAndShapeInfo> info;
        check(a.GetTensorTypeAndShape(out[i].ptr, &info.ptr), "output '" + outputs[i] + "'");
        ONNXTensorElementDataType type;
        check(a.GetTensorElementType(info.ptr, &type), "output '" + outputs[i] + "'");
        if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
            throw Error(ROUTERM_ERR_BUNDLE, path_ + ": output '" + outputs[i] + "' is not float32 (the bundle contract)");
        size_t rank = 0, count = 0;
        check(a.GetDimensionsCount(info.ptr, &rank), "output rank");
        result[i].shape.resize(rank);
        check(a.GetDimensions(info.ptr, result[i].shape.data(), rank), "output shape");
        check(a.GetTensorShapeElementCount(info.ptr, &count), "output size");
        float *data = nullptr;
        check(a.GetTensorMutableData(out[i].ptr, reinterpret_cast<void **>(&data)), "output data");
        result[i].data.assign(data, data + count);
    }
    return result;
}

}  // namespace routerm
