#include "util.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "error.hpp"

namespace routerm {

std::string read_file(const std::string &path, int status) {
    std::unique_ptr<FILE, int (*)(FILE *)> fh(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!fh) throw Error(static_cast<routerm_status>(status), "cannot open '" + path + "'");
    std::string out;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, fh.get())) > 0) out.append(buf, n);
    if (std::ferror(fh.get())) throw Error(static_cast<routerm_status>(status), "error reading '" + path + "'");
    return out;
}

bool is_file(const std::string &path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_dir(const std::string &path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join_path(const std::string &dir, const std::string &rel) {
    if (dir.empty()) return rel;
    return dir.back() == '/' ? dir + rel : dir + "/" + rel;
}

std::string parent_dir(const std::string &rel) {
    size_t slash = rel.find_last_of('/');
    return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

}  // namespace routerm
