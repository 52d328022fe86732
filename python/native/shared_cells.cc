// _native.Cells: the cells of one shared value or array in the job's
// segment (worker/shared_lookup.h), read and written atomically, as the C++
// SDK's SharedValue<T> does (relaxed order; a compare-and-swap loop adds
// doubles). Indexes are checked; a value is a Cells of length 1.
//
// The segment stays mapped for the process's life, so a Cells never
// dangles. corral/shared.py wraps it in Value and Array.
#include <atomic>
#include <bit>
#include <cstdint>
#include <exception>
#include <string>

#include "python/native/native.h"
#include "worker/shared_lookup.h"

namespace corral::native {
namespace {

struct Cells {
  PyObject_HEAD std::atomic<uint64_t>* cells;
  Py_ssize_t length;
  sdk::SharedType type;
  bool array;
  PyObject* name;
};

// Cell I of SELF, or nullptr with IndexError set.
std::atomic<uint64_t>* cell(Cells* self, Py_ssize_t i) {
  if (i < 0 || i >= self->length) {
    PyErr_Format(PyExc_IndexError, "shared %s '%U' has no index %zd (length %zd)",
                 self->array ? "array" : "value", self->name, i, self->length);
    return nullptr;
  }
  return self->cells + i;
}

PyObject* to_python(const Cells* self, uint64_t bits) {
  switch (self->type) {
    case sdk::SharedType::kU64:
      return PyLong_FromUnsignedLongLong(bits);
    case sdk::SharedType::kI64:
      return PyLong_FromLongLong(std::bit_cast<int64_t>(bits));
    case sdk::SharedType::kF64:
      return PyFloat_FromDouble(std::bit_cast<double>(bits));
  }
  Py_RETURN_NONE;
}

// VALUE as the bits of SELF's type; false with an exception set. A u64
// also takes a negative int for add(), where it wraps as unsigned
// arithmetic does (add(-1) takes one away).
bool to_bits(const Cells* self, PyObject* value, bool negative_wraps, uint64_t* bits) {
  if (self->type == sdk::SharedType::kF64) {
    const double d = PyFloat_AsDouble(value);
    if (d == -1.0 && PyErr_Occurred()) return false;
    *bits = std::bit_cast<uint64_t>(d);
    return true;
  }
  if (!PyLong_Check(value)) {
    PyErr_Format(PyExc_TypeError, "shared %s '%U' holds %s integers, not %s",
                 self->array ? "array" : "value", self->name, sdk::shared_type_name(self->type),
                 Py_TYPE(value)->tp_name);
    return false;
  }
  int overflow = 0;
  const long long signed_value = PyLong_AsLongLongAndOverflow(value, &overflow);
  if (signed_value == -1 && PyErr_Occurred()) return false;
  if (overflow == 0 &&
      (self->type == sdk::SharedType::kI64 || signed_value >= 0 || negative_wraps)) {
    *bits = static_cast<uint64_t>(signed_value);
    return true;
  }
  if (self->type == sdk::SharedType::kU64 && overflow > 0) {
    const unsigned long long unsigned_value = PyLong_AsUnsignedLongLong(value);
    if (unsigned_value == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
    *bits = unsigned_value;
    return true;
  }
  PyErr_Format(PyExc_OverflowError, "%R is out of the range of shared %s '%U' (%s)", value,
               self->array ? "array" : "value", self->name, sdk::shared_type_name(self->type));
  return false;
}

// The cell INDEX names; nullptr with an exception set.
std::atomic<uint64_t>* cell_at(Cells* self, PyObject* index) {
  const Py_ssize_t i = PyNumber_AsSsize_t(index, PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) return nullptr;
  return cell(self, i);
}

// USAGE's two arguments: the cell and the value as bits; false with an
// exception set.
bool cell_and_bits(Cells* self, PyObject* const* args, Py_ssize_t nargs, const char* usage,
                   bool negative_wraps, std::atomic<uint64_t>** c, uint64_t* bits) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, usage);
    return false;
  }
  *c = cell_at(self, args[0]);
  return *c != nullptr && to_bits(self, args[1], negative_wraps, bits);
}

PyObject* cells_load(PyObject* object, PyObject* index) {
  auto* self = reinterpret_cast<Cells*>(object);
  std::atomic<uint64_t>* c = cell_at(self, index);
  return c != nullptr ? to_python(self, c->load(std::memory_order_relaxed)) : nullptr;
}

PyObject* cells_store(PyObject* object, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<Cells*>(object);
  std::atomic<uint64_t>* c = nullptr;
  uint64_t bits = 0;
  if (!cell_and_bits(self, args, nargs, "store(index, value)", false, &c, &bits)) return nullptr;
  c->store(bits, std::memory_order_relaxed);
  Py_RETURN_NONE;
}

// add(index, delta) -> the value before.
PyObject* cells_add(PyObject* object, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<Cells*>(object);
  std::atomic<uint64_t>* c = nullptr;
  uint64_t delta = 0;
  if (!cell_and_bits(self, args, nargs, "add(index, delta)", true, &c, &delta)) return nullptr;
  if (self->type != sdk::SharedType::kF64) {
    // Two's complement: adding the bits adds the value, wrapping.
    return to_python(self, c->fetch_add(delta, std::memory_order_relaxed));
  }
  uint64_t old_bits = c->load(std::memory_order_relaxed);
  const double d = std::bit_cast<double>(delta);
  while (!c->compare_exchange_weak(old_bits,
                                   std::bit_cast<uint64_t>(std::bit_cast<double>(old_bits) + d),
                                   std::memory_order_relaxed)) {
  }
  return to_python(self, old_bits);
}

Py_ssize_t cells_length(PyObject* object) { return reinterpret_cast<Cells*>(object)->length; }

PyObject* cells_type(PyObject* object, void* /*closure*/) {
  return PyUnicode_FromString(sdk::shared_type_name(reinterpret_cast<Cells*>(object)->type));
}

PyObject* cells_is_array(PyObject* object, void* /*closure*/) {
  return PyBool_FromLong(reinterpret_cast<Cells*>(object)->array ? 1 : 0);
}

PyObject* cells_name(PyObject* object, void* /*closure*/) {
  PyObject* name = reinterpret_cast<Cells*>(object)->name;
  Py_INCREF(name);
  return name;
}

void cells_dealloc(PyObject* object) {
  Py_XDECREF(reinterpret_cast<Cells*>(object)->name);
  Py_TYPE(object)->tp_free(object);
}

PyMethodDef cells_methods[] = {
    {"load", cells_load, METH_O, "load(index): the cell's value"},
    {"store", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(cells_store)),
     METH_FASTCALL, "store(index, value)"},
    {"add", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(cells_add)), METH_FASTCALL,
     "add(index, delta) -> the value before, atomically"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef cells_getset[] = {
    {"type", cells_type, nullptr, "u64, i64 or f64, as the config declares", nullptr},
    {"is_array", cells_is_array, nullptr, "an array (else a value)", nullptr},
    {"name", cells_name, nullptr, "the name in the config's shared:", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PySequenceMethods cells_sequence = {
    cells_length, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
};

PyTypeObject make_cells_type() {
  PyTypeObject type = {PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "corral._native.Cells";
  type.tp_basicsize = sizeof(Cells);
  type.tp_dealloc = cells_dealloc;
  type.tp_as_sequence = &cells_sequence;
  type.tp_flags = Py_TPFLAGS_DEFAULT;
  type.tp_doc = "the cells of a shared value or array of the job (find_shared)";
  type.tp_methods = cells_methods;
  type.tp_getset = cells_getset;
  return type;
}

}  // namespace

PyTypeObject CellsType = make_cells_type();

PyObject* find_shared(PyObject* /*module*/, PyObject* name) {
  if (!PyUnicode_Check(name)) {
    PyErr_SetString(PyExc_TypeError, "find_shared(name): the name is a str");
    return nullptr;
  }
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(name, &size);
  if (text == nullptr) return nullptr;
  sdk::SharedFound found;
  try {
    found = sdk::find_shared_any(std::string_view(text, static_cast<size_t>(size)));
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
  Cells* cells = PyObject_New(Cells, &CellsType);
  if (cells == nullptr) return nullptr;
  cells->cells = found.cells.cells;
  cells->length = static_cast<Py_ssize_t>(found.cells.length);
  cells->type = found.type;
  cells->array = found.array;
  Py_INCREF(name);
  cells->name = name;
  return reinterpret_cast<PyObject*>(cells);
}

}  // namespace corral::native
