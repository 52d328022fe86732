#include "worker/shared_lookup.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "ipc/segment.h"
#include "worker/shm_attachment.h"

namespace corral::sdk {
namespace {

const char* element_name(ipc::SharedElement type) {
  switch (type) {
    case ipc::SharedElement::kU64:
      return "u64";
    case ipc::SharedElement::kI64:
      return "i64";
    case ipc::SharedElement::kF64:
      return "f64";
  }
  return "of an unknown type";
}

template <class T>
constexpr ipc::SharedElement element_of() {
  if constexpr (std::is_same_v<T, uint64_t>) return ipc::SharedElement::kU64;
  if constexpr (std::is_same_v<T, int64_t>) return ipc::SharedElement::kI64;
  return ipc::SharedElement::kF64;
}

}  // namespace

template <class T>
SharedCells find_shared(std::string_view name, bool array) {
  const ShmAttachment& attachment = shm_attachment();
  if (!attachment) throw std::runtime_error(attachment.error().error.message());
  std::optional<ipc::SharedView> view = attachment->segment.find_shared(name);
  if (!view) {
    throw std::runtime_error("the job '" + std::string(attachment->segment.job()) +
                             "' declares no shared value or array '" + std::string(name) + "'");
  }
  if (view->is_array != array) {
    throw std::runtime_error("shared " + std::string(view->is_array ? "array" : "value") + " '" +
                             std::string(view->name) + "' is not " +
                             (array ? "an array" : "a value"));
  }
  constexpr ipc::SharedElement want = element_of<T>();
  if (view->type != want) {
    throw std::runtime_error("shared " + std::string(array ? "array" : "value") + " '" +
                             std::string(view->name) + "' is " + element_name(view->type) +
                             ", not " + element_name(want));
  }
  return {view->cells, static_cast<size_t>(view->length)};
}

template SharedCells find_shared<uint64_t>(std::string_view, bool);
template SharedCells find_shared<int64_t>(std::string_view, bool);
template SharedCells find_shared<double>(std::string_view, bool);

}  // namespace corral::sdk
