// The one exception type inside the library; the C ABI (routerm.cpp) turns it into a status.
#pragma once

#include <stdexcept>
#include <string>

#include "routerm.h"

namespace routerm {

struct Error : std::runtime_error {
    routerm_status status;
    Error(routerm_status s, const std::string &message) : std::runtime_error(message), status(s) {}
};

}  // namespace routerm
