#include "worker/shared_lookup.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "ipc/segment.h"
#include "worker/shm_attachment.h"

namespace corral::sdk {
namespace {

SharedType type_of(ipc::SharedElement element) {
  switch (element) {
    case ipc::SharedElement::kU64:
      return SharedType::kU64;
    case ipc::SharedElement::kI64:
      return SharedType::kI64;
    case ipc::SharedElement::kF64:
      return SharedType::kF64;
  }
  // The segment was checked at attach: no other element type gets this far.
  throw std::runtime_error("a shared value of an unknown element type");
}

template <class T>
constexpr SharedType type_of() {
  if constexpr (std::is_same_v<T, uint64_t>) return SharedType::kU64;
  if constexpr (std::is_same_v<T, int64_t>) return SharedType::kI64;
  return SharedType::kF64;
}

}  // namespace

const char* shared_type_name(SharedType type) {
  switch (type) {
    case SharedType::kU64:
      return "u64";
    case SharedType::kI64:
      return "i64";
    case SharedType::kF64:
      return "f64";
  }
  return "of an unknown type";
}

SharedFound find_shared_any(std::string_view name) {
  const ShmAttachment& attachment = shm_attachment();
  if (!attachment) throw std::runtime_error(attachment.error().error.message());
  std::optional<ipc::SharedView> view = attachment->segment.find_shared(name);
  if (!view) {
    throw std::runtime_error("the job '" + std::string(attachment->segment.job()) +
                             "' declares no shared value or array '" + std::string(name) + "'");
  }
  return {{view->cells, static_cast<size_t>(view->length)}, type_of(view->type), view->is_array};
}

template <class T>
SharedCells find_shared(std::string_view name, bool array) {
  const SharedFound found = find_shared_any(name);
  const std::string what = std::string(array ? "array" : "value");
  if (found.array != array) {
    throw std::runtime_error("shared " + std::string(found.array ? "array" : "value") + " '" +
                             std::string(name) + "' is not " + (array ? "an array" : "a value"));
  }
  constexpr SharedType want = type_of<T>();
  if (found.type != want) {
    throw std::runtime_error("shared " + what + " '" + std::string(name) + "' is " +
                             shared_type_name(found.type) + ", not " + shared_type_name(want));
  }
  return found.cells;
}

template SharedCells find_shared<uint64_t>(std::string_view, bool);
template SharedCells find_shared<int64_t>(std::string_view, bool);
template SharedCells find_shared<double>(std::string_view, bool);

}  // namespace corral::sdk
