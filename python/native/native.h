// corral._native, the corral package's C++ module: Python workers on the
// shm channel (serve.cc) and the job's shared values and arrays as they see
// them (shared_cells.cc), both through the C++ worker SDK's insides, so that
// a Python worker speaks the segment's protocol with the same code as a C++
// one. Optional: without it (a pip install of python/ alone) the package
// serves the pipe channel only, and says so on shm.
//
// Built by CMake from the worker SDK's sources (python/native/CMakeLists.txt)
// and installed beside the package's .py files. Every function is called
// with the GIL held unless it says otherwise.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace corral::native {

// _native.serve(handler, binary) -> exit code.
PyObject* serve(PyObject* module, PyObject* args);
// _native.request_stop(): stop_after_this_task() for a worker on shm.
PyObject* request_stop(PyObject* module, PyObject* unused);
// _native.Cells, and _native.find_shared(name) -> Cells.
extern PyTypeObject CellsType;
PyObject* find_shared(PyObject* module, PyObject* name);

}  // namespace corral::native
