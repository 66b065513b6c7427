// core/onnx_refs.py in C++: the protobuf wire format walked over the memory-mapped file, through
// the messages that can hold a tensor (field numbers from onnx.proto3):
//
//   ModelProto.graph(7) .functions(25).node(7) .training_info(20).{initialization(1), algorithm(2)}
//   GraphProto.node(1) .initializer(5) .sparse_initializer(15)
//   NodeProto.attribute(5): t(5) g(6) tensors(10) graphs(11) sparse_tensor(22) sparse_tensors(23)
//   SparseTensorProto.values(1) .indices(2);  TensorProto.external_data(13): {key(1), value(2)}
//
// Weights stored inline (raw_data and the like) are fields no table descends into: they are
// skipped by their length, never read.
#include "onnx_refs.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "error.hpp"

namespace routerm {

namespace {

enum class Kind { None, Model, Training, Function, Graph, Node, Attribute, Sparse, Tensor, Entry };

constexpr int kMaxDepth = 64;   // core.onnx_refs._DEPTH: nested subgraphs deeper are malformed

// core.onnx_refs._DESCEND: the message a length-delimited field of `kind` holds, or None (skipped).
Kind child(Kind kind, uint64_t field) {
    switch (kind) {
    case Kind::Model: return field == 7 ? Kind::Graph : field == 25 ? Kind::Function : field == 20 ? Kind::Training : Kind::None;
    case Kind::Training: return field == 1 || field == 2 ? Kind::Graph : Kind::None;
    case Kind::Function: return field == 7 ? Kind::Node : Kind::None;
    case Kind::Graph: return field == 1 ? Kind::Node : field == 5 ? Kind::Tensor : field == 15 ? Kind::Sparse : Kind::None;
    case Kind::Node: return field == 5 ? Kind::Attribute : Kind::None;
    case Kind::Attribute:
        switch (field) {
        case 5: case 10: return Kind::Tensor;
        case 6: case 11: return Kind::Graph;
        case 22: case 23: return Kind::Sparse;
        default: return Kind::None;
        }
    case Kind::Sparse: return field == 1 || field == 2 ? Kind::Tensor : Kind::None;
    case Kind::Tensor: return field == 13 ? Kind::Entry : Kind::None;
    default: return Kind::None;
    }
}

// Thrown inside the walk; external_locations turns it into Error(ROUTERM_ERR_BUNDLE) naming the file.
struct Malformed {
    const char *why;
};

// A length-delimited field: its number and bytes [start, end) of the buffer.
struct Field {
    uint64_t number;
    size_t start, end;
};

// The length-delimited fields of the message in buf[start, end), one at a time; varint and
// fixed-width fields are stepped over, group wire types (3, 4) are refused.
class Fields {
public:
    Fields(const uint8_t *buf, size_t start, size_t end) : buf_(buf), pos_(start), end_(end) {}

    // The next length-delimited field into `out`; false at the message's end.
    bool next(Field &out) {
        while (pos_ < end_) {
            uint64_t key = varint();
            switch (key & 7) {
            case 0: varint(); break;
            case 1: skip(8); break;
            case 5: skip(4); break;
            case 2: {
                uint64_t size = varint();
                if (size > end_ - pos_) throw Malformed{"a field runs past the end of its message"};
                out = {key >> 3, pos_, pos_ + size_t(size)};
                pos_ += size_t(size);
                return true;
            }
            default: throw Malformed{"unsupported wire type"};
            }
        }
        return false;
    }

private:
    uint64_t varint() {
        uint64_t value = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (pos_ >= end_ || shift > 63) throw Malformed{"truncated or overlong varint"};
            uint8_t byte = buf_[pos_++];
            value |= uint64_t(byte & 0x7F) << shift;
            if (byte < 0x80) return value;
        }
    }
    void skip(size_t n) {
        if (n > end_ - pos_) throw Malformed{"a fixed-width field runs past the end of its message"};
        pos_ += n;
    }

    const uint8_t *buf_;
    size_t pos_, end_;
};

// A StringStringEntryProto: "location" -> its value added to `out`; other keys ignored.
void entry(const uint8_t *buf, const Field &at, std::set<std::string> &out) {
    std::string key, value;   // the last of repeated fields wins, as protobuf parsers read them
    Fields fields(buf, at.start, at.end);
    for (Field f; fields.next(f);) {
        if (f.number == 1) key.assign(reinterpret_cast<const char *>(buf + f.start), f.end - f.start);
        if (f.number == 2) value.assign(reinterpret_cast<const char *>(buf + f.start), f.end - f.start);
    }
    if (key == "location") out.insert(value);
}

void walk(const uint8_t *buf, Kind kind, size_t start, size_t end, std::set<std::string> &out, int depth) {
    if (depth > kMaxDepth) throw Malformed{"subgraphs nested too deep"};
    Fields fields(buf, start, end);
    for (Field f; fields.next(f);) {
        Kind sub = child(kind, f.number);
        if (sub == Kind::Entry) entry(buf, f, out);
        else if (sub != Kind::None) walk(buf, sub, f.start, f.end, out, depth + 1);
    }
}

// The file mapped read-only for the walk; unmapped and closed on every path out.
class Mapped {
public:
    explicit Mapped(const std::string &path) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) fail(std::string("cannot open it (") + std::strerror(errno) + ")");
        struct stat st;
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) fail("not a regular file");
        size_ = size_t(st.st_size);
        if (size_ == 0) fail("empty file");
        void *p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
        if (p == MAP_FAILED) fail(std::string("cannot map it (") + std::strerror(errno) + ")");
        data_ = static_cast<const uint8_t *>(p);
    }
    ~Mapped() { close(); }
    Mapped(const Mapped &) = delete;
    Mapped &operator=(const Mapped &) = delete;

    const uint8_t *data() const { return data_; }
    size_t size() const { return size_; }
    [[noreturn]] void fail(const std::string &why) {
        close();
        throw Error(ROUTERM_ERR_BUNDLE, "'" + path_ + "' is not a well-formed ONNX graph (" + why + ")");
    }

private:
    void close() {
        if (data_) ::munmap(const_cast<uint8_t *>(data_), size_);
        if (fd_ >= 0) ::close(fd_);
        data_ = nullptr;
        fd_ = -1;
    }

    std::string path_;
    int fd_ = -1;
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace

std::set<std::string> external_locations(const std::string &path) {
    Mapped file(path);
    std::set<std::string> out;
    try {
        walk(file.data(), Kind::Model, 0, file.size(), out, 0);
    } catch (const Malformed &m) {
        file.fail(m.why);
    }
    return out;
}

bool location_outside(const std::string &location) {
    if (location.empty() || location[0] == '/' || location.find('\\') != std::string::npos) return true;
    bool drive = location.size() >= 2 && location[1] == ':' &&
                 ((location[0] >= 'A' && location[0] <= 'Z') || (location[0] >= 'a' && location[0] <= 'z'));
    if (drive) return true;
    for (size_t start = 0;;) {   // a ".." part, between slashes or at either end
        size_t slash = location.find('/', start);
        size_t len = (slash == std::string::npos ? location.size() : slash) - start;
        if (location.compare(start, len, "..") == 0) return true;
        if (slash == std::string::npos) return false;
        start = slash + 1;
    }
}

}  // namespace routerm
