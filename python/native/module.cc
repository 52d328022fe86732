// The module's table: what corral/worker.py and corral/shared.py call.
#include "python/native/native.h"

namespace corral::native {
namespace {

PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(handler, binary) -> int: serves the shm channel the environment names with "
     "HANDLER until the sentinel; the process's exit code"},
    {"request_stop", request_stop, METH_NOARGS,
     "request_stop(): serve() returns once the running task's result is sent"},
    {"find_shared", find_shared, METH_O,
     "find_shared(name) -> Cells: the job's shared value or array NAME"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "corral._native",
    "corral's C++ side: Python workers on the shm channel, and the job's shared values",
    -1,
    methods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace
}  // namespace corral::native

PyMODINIT_FUNC PyInit__native() {
  if (PyType_Ready(&corral::native::CellsType) < 0) return nullptr;
  PyObject* module = PyModule_Create(&corral::native::module_def);
  if (module == nullptr) return nullptr;
  Py_INCREF(&corral::native::CellsType);
  if (PyModule_AddObject(module, "Cells", reinterpret_cast<PyObject*>(&corral::native::CellsType)) <
      0) {
    Py_DECREF(&corral::native::CellsType);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
