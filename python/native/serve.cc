// A Python function served on the shm channel by the C++ SDK's driver
// (worker/shm_channel.cc): the loop, the rings, the wake-ups and the
// heartbeats are C++ and run without the GIL; the GIL is taken around each
// call of the handler only, so the worker's other Python threads run while
// it waits for tasks.
//
// The handler's contract is corral.worker's on pipes: str (decoded as UTF-8
// with surrogateescape) or bytes in, str or bytes out, an Exception fails
// the task with its text. A BaseException that is not an Exception
// (SystemExit, KeyboardInterrupt) ends the process as it would a Python
// program, without answering the task: corrald counts it as a crash.
#include <string>
#include <string_view>
#include <utility>

#include "python/native/native.h"
#include "worker/serving.h"

namespace corral::native {
namespace {

// The handler's failure: str(exception), or its type's name when empty.
std::string failure_text() {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  std::string text;
  if (PyObject* str = value != nullptr ? PyObject_Str(value) : nullptr) {
    Py_ssize_t size = 0;
    // "replace": a message is for people; its bytes need not survive.
    if (PyObject* bytes = PyUnicode_AsEncodedString(str, "utf-8", "replace")) {
      char* data = nullptr;
      if (PyBytes_AsStringAndSize(bytes, &data, &size) == 0) text.assign(data, size);
      Py_DECREF(bytes);
    }
    Py_DECREF(str);
  }
  PyErr_Clear();
  if (text.empty() && type != nullptr) {
    text = reinterpret_cast<PyTypeObject*>(type)->tp_name;
    if (size_t dot = text.rfind('.'); dot != std::string::npos) text.erase(0, dot + 1);
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
  return text;
}

// An exception that is not an Exception is the process's end: printed as
// Python prints it (SystemExit exits with its code there), then exit 1.
[[noreturn]] void exit_as_python_would() {
  PyErr_Print();  // exits for SystemExit, after Python's own cleanup
  Py_Exit(1);
}

// The handler's result as an answer: bytes-like objects as they are, str as
// UTF-8 with surrogateescape (so that any bytes a str task carried survive).
sdk::Answer answer_of(PyObject* result) {
  if (PyUnicode_Check(result)) {
    PyObject* bytes = PyUnicode_AsEncodedString(result, "utf-8", "surrogateescape");
    if (bytes == nullptr) return {false, failure_text()};
    sdk::Answer answer{true, std::string(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes))};
    Py_DECREF(bytes);
    return answer;
  }
  if (PyBytes_Check(result)) {
    return {true, std::string(PyBytes_AS_STRING(result), PyBytes_GET_SIZE(result))};
  }
  if (PyObject_CheckBuffer(result)) {
    Py_buffer view;
    if (PyObject_GetBuffer(result, &view, PyBUF_SIMPLE) < 0) return {false, failure_text()};
    sdk::Answer answer{true, std::string(static_cast<const char*>(view.buf), view.len)};
    PyBuffer_Release(&view);
    return answer;
  }
  return {false,
          std::string("the handler returned ") + Py_TYPE(result)->tp_name + ", not str or bytes"};
}

class PythonHandler {
 public:
  PythonHandler(PyObject* handler, bool binary) : handler_(handler), binary_(binary) {}

  // The GIL is released for the loop and taken back for each task.
  int serve() {
    saved_ = PyEval_SaveThread();
    const int code = sdk::serve_channel([this](std::string_view task) { return call(task); });
    PyEval_RestoreThread(saved_);
    return code;
  }

 private:
  sdk::Answer call(std::string_view task) {
    PyEval_RestoreThread(saved_);
    sdk::Answer answer = call_with_gil(task);
    saved_ = PyEval_SaveThread();
    return answer;
  }

  sdk::Answer call_with_gil(std::string_view task) {
    // Python's signal handlers run here, between tasks (a SIGINT's
    // KeyboardInterrupt ends the worker as below).
    if (PyErr_CheckSignals() < 0) exit_as_python_would();
    PyObject* argument =
        binary_ ? PyBytes_FromStringAndSize(task.data(), static_cast<Py_ssize_t>(task.size()))
                : PyUnicode_DecodeUTF8(task.data(), static_cast<Py_ssize_t>(task.size()),
                                       "surrogateescape");
    if (argument == nullptr) return {false, failure_text()};  // no memory
    PyObject* result = PyObject_CallOneArg(handler_, argument);
    Py_DECREF(argument);
    if (result == nullptr) {
      if (!PyErr_ExceptionMatches(PyExc_Exception)) exit_as_python_would();
      return {false, failure_text()};
    }
    sdk::Answer answer = answer_of(result);
    Py_DECREF(result);
    return answer;
  }

  PyObject* handler_;
  bool binary_;
  PyThreadState* saved_ = nullptr;
};

}  // namespace

PyObject* serve(PyObject* /*module*/, PyObject* args) {
  PyObject* handler = nullptr;
  int binary = 0;
  if (!PyArg_ParseTuple(args, "Op:serve", &handler, &binary)) return nullptr;
  if (!PyCallable_Check(handler)) {
    PyErr_SetString(PyExc_TypeError, "serve(): the handler is not callable");
    return nullptr;
  }
  PythonHandler serving(handler, binary != 0);
  return PyLong_FromLong(serving.serve());
}

PyObject* request_stop(PyObject* /*module*/, PyObject* /*unused*/) {
  sdk::request_stop();
  Py_RETURN_NONE;
}

}  // namespace corral::native
