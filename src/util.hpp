// File helpers shared by the manifest and tokenizer readers.
#pragma once

#include <string>

namespace routerm {

// The whole file; throws Error(status) naming the path when it cannot be read.
std::string read_file(const std::string &path, int status);
bool is_file(const std::string &path);
bool is_dir(const std::string &path);
std::string join_path(const std::string &dir, const std::string &rel);
std::string parent_dir(const std::string &rel);   // "" for a bare name

}  // namespace routerm
