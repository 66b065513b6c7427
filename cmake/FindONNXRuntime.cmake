# FindONNXRuntime
# ---------------
# Finds the ONNX Runtime C API headers and shared library.
#
# Looks, in order, in: ONNXRUNTIME_ROOT (CMake or environment variable), the system (e.g.
# JetPack's /usr or /usr/local, Debian's libonnxruntime-dev), and this repository's
# third_party/onnxruntime (made by scripts/fetch_onnxruntime.sh: Debian 13 headers + the
# library of the onnxruntime Python wheel).
#
# Result: ONNXRuntime_FOUND, ONNXRuntime_INCLUDE_DIR, ONNXRuntime_LIBRARY,
# ONNXRuntime_API_VERSION (ORT_API_VERSION of the headers) and the imported target
# ONNXRuntime::ONNXRuntime.

set(_ort_hints)
if(ONNXRUNTIME_ROOT)
  list(APPEND _ort_hints "${ONNXRUNTIME_ROOT}")
endif()
if(DEFINED ENV{ONNXRUNTIME_ROOT})
  list(APPEND _ort_hints "$ENV{ONNXRUNTIME_ROOT}")
endif()
set(_ort_fetched "${CMAKE_CURRENT_LIST_DIR}/../third_party/onnxruntime")

# The explicit root first, then the system, then the fetched copy.
foreach(_pass ROOT SYSTEM FETCHED)
  if(_pass STREQUAL "ROOT" AND _ort_hints)
    set(_opts HINTS ${_ort_hints} NO_DEFAULT_PATH)
  elseif(_pass STREQUAL "SYSTEM")
    set(_opts)
  elseif(_pass STREQUAL "FETCHED")
    set(_opts HINTS "${_ort_fetched}" NO_DEFAULT_PATH)
  else()
    continue()
  endif()
  find_path(ONNXRuntime_INCLUDE_DIR onnxruntime_c_api.h ${_opts}
            PATH_SUFFIXES include include/onnxruntime include/onnxruntime/core/session)
  find_library(ONNXRuntime_LIBRARY NAMES onnxruntime ${_opts} PATH_SUFFIXES lib lib64)
  if(ONNXRuntime_INCLUDE_DIR AND ONNXRuntime_LIBRARY)
    break()
  endif()
endforeach()

if(ONNXRuntime_INCLUDE_DIR AND EXISTS "${ONNXRuntime_INCLUDE_DIR}/onnxruntime_c_api.h")
  file(STRINGS "${ONNXRuntime_INCLUDE_DIR}/onnxruntime_c_api.h" _ort_line REGEX "^#define ORT_API_VERSION [0-9]+")
  string(REGEX REPLACE "^#define ORT_API_VERSION ([0-9]+).*" "\\1" ONNXRuntime_API_VERSION "${_ort_line}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ONNXRuntime
  REQUIRED_VARS ONNXRuntime_LIBRARY ONNXRuntime_INCLUDE_DIR
  VERSION_VAR ONNXRuntime_API_VERSION
  REASON_FAILURE_MESSAGE "set -DONNXRUNTIME_ROOT=<dir with include/ and lib/>, install libonnxruntime-dev, or run scripts/fetch_onnxruntime.sh")

if(ONNXRuntime_FOUND AND NOT TARGET ONNXRuntime::ONNXRuntime)
  add_library(ONNXRuntime::ONNXRuntime SHARED IMPORTED)
  set_target_properties(ONNXRuntime::ONNXRuntime PROPERTIES
    IMPORTED_LOCATION "${ONNXRuntime_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${ONNXRuntime_INCLUDE_DIR}")
endif()
mark_as_advanced(ONNXRuntime_INCLUDE_DIR ONNXRuntime_LIBRARY)
