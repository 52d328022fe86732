// Errors as values, for every fallible call of corral (leveldb's Status,
// C++23's std::expected in small): a Result<T> holds a T or an Error, a
// Status (Result<void>) holds nothing or an Error. A caller that must decide
// gets the reason as a value; exceptions stay inside the layer that calls a
// throwing library (yaml-cpp, nlohmann/json, Boost) and are turned into a
// Result there.
//
// An Error is a message for a person, whole: "exec /x: Permission denied".
// Where a caller knows more (which job, which file), it adds it in front with
// context(): Error("Permission denied").context("exec /x"). A Result whose
// error is not one message (the config loader's list of diagnostics, each
// with its file and place) names its own error type: Result<T, E>.
//
// Header-only and dependent on nothing of corral's: every library may use it
// (base/ is below config/, ipc/, protocol/, daemon/, ctl/ and worker/).
#pragma once

#include <errno.h>
#include <string.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace corral {

class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const { return message_; }
  // "WHAT: message".
  Error context(std::string_view what) const& { return Error(std::string(what) + ": " + message_); }
  Error context(std::string_view what) && {
    message_.insert(0, std::string(what) + ": ");
    return std::move(*this);
  }
  bool operator==(const Error&) const = default;

 private:
  std::string message_;
};

// "WHAT: strerror(ERR)", the shape of every failed system call's message.
inline Error errno_error(std::string_view what, int err = errno) {
  return Error(std::string(what) + ": " + ::strerror(err));
}

template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // The value; only when ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

  // The error; only when !ok().
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, E> v_;
};

// Nothing, or an error.
template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  // The error; only when !ok().
  const E& error() const& { return *error_; }
  E&& error() && { return std::move(*error_); }

 private:
  std::optional<E> error_;
};

using Status = Result<void>;

// The message of a Status or Result: "" when it is ok. For logs and replies
// that carry the reason as text.
template <typename T>
std::string message_of(const Result<T>& result) {
  return result.ok() ? std::string() : result.error().message();
}

}  // namespace corral
