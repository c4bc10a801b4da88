// Splits one batch of member operations into the upload requests Meta takes: removes before
// adds, the rows of one member always in the same request, at most max_rows_per_request rows each.
#ifndef ACTIVATION_PLATFORMS_META_META_PLAN_HPP_
#define ACTIVATION_PLATFORMS_META_META_PLAN_HPP_

#include <cstddef>
#include <vector>

#include "activation/backend/destination.hpp"
#include "platforms/meta/meta_payload.hpp"
#include "platforms/meta/meta_session.hpp"

namespace activation::platforms::meta {

struct PlannedRequest {
  OperationType type = OperationType::kAdd;
  // False for removes whose keys include a field that the run's schema lacks (keys that the
  // ledger stores from a run with another mapping). They go outside the sessions, whose schema
  // is fixed, with a schema of their own.
  bool in_session = true;
  std::vector<MetaColumn> columns;
  std::vector<RowCells> rows;
  std::vector<std::size_t> row_operation;  // For each row, the index of its operation in the batch.
};

struct BatchPlan {
  std::vector<PlannedRequest> requests;
  // Operations that become no row at all, by index: every identifier lacks a Meta key.
  std::vector<std::size_t> unsendable;
};

// Plans `batch` for the run's schema `columns`. The plan depends only on its arguments, so a batch
// sent again is split the same way.
BatchPlan plan_batch(const Batch& batch, const std::vector<MetaColumn>& columns,
                     std::size_t max_rows_per_request);

}  // namespace activation::platforms::meta

#endif  // ACTIVATION_PLATFORMS_META_META_PLAN_HPP_
