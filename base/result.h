// Result<T>: either a value of T or a non-OK Status. A value type with no synchronization.
// Accessing value() of an error Result is a programming error (checked by assert).
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "base/status.h"

namespace gsk {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result built from a Status must carry an error");
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result built from an OK Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace gsk

#define GSK_CONCAT_INNER_(a, b) a##b
#define GSK_CONCAT_(a, b) GSK_CONCAT_INNER_(a, b)
#define GSK_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// `GSK_ASSIGN_OR_RETURN(auto x, Foo());` binds x to Foo()'s value or returns its Status.
#define GSK_ASSIGN_OR_RETURN(lhs, expr) \
  GSK_ASSIGN_OR_RETURN_IMPL_(GSK_CONCAT_(gsk_result_, __LINE__), lhs, expr)
