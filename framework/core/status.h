// Status helpers: early-return macros over absl::Status / absl::StatusOr.
#pragma once
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BRAID_CONCAT_INNER_(a, b) a##b
#define BRAID_CONCAT_(a, b) BRAID_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define BRAID_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status braid_status_ = (expr);         \
    if (!braid_status_.ok()) return braid_status_; \
  } while (0)

// `BRAID_ASSIGN_OR_RETURN(auto x, MakeX());` unwraps a StatusOr or returns its error.
#define BRAID_ASSIGN_OR_RETURN(lhs, expr) \
  BRAID_ASSIGN_OR_RETURN_IMPL_(BRAID_CONCAT_(braid_statusor_, __LINE__), lhs, expr)
#define BRAID_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                 \
  if (!var.ok()) return std::move(var).status();     \
  lhs = std::move(var).value()
