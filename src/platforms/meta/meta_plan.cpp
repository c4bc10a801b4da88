#include "platforms/meta/meta_plan.hpp"

namespace activation::platforms::meta {
namespace {

// Appends requests of `type` holding the rows of `indexes`, starting a new request when the next
// member's rows would not fit.
void pack(const Batch& batch, const std::vector<std::size_t>& indexes, const std::vector<MetaColumn>& columns,
          OperationType type, bool in_session, std::size_t max_rows, BatchPlan& plan) {
  std::vector<RowCells> rows;
  PlannedRequest* current = nullptr;
  for (std::size_t index : indexes) {
    rows.clear();
    expand_rows(batch.operations[index], columns, rows);
    if (rows.empty()) {
      plan.unsendable.push_back(index);
      continue;
    }
    if (current == nullptr || current->rows.size() + rows.size() > max_rows) {
      plan.requests.push_back(PlannedRequest{type, in_session, columns, {}, {}});
      current = &plan.requests.back();
    }
    for (auto& row : rows) {
      current->rows.push_back(std::move(row));
      current->row_operation.push_back(index);
    }
  }
}

}  // namespace

BatchPlan plan_batch(const Batch& batch, const std::vector<MetaColumn>& columns,
                     std::size_t max_rows_per_request) {
  BatchPlan plan;
  std::vector<std::size_t> removes;
  std::vector<std::size_t> adds;
  std::vector<std::size_t> outside;
  std::vector<const MemberOperation*> outside_operations;
  std::vector<RowCells> probe;
  for (std::size_t i = 0; i < batch.operations.size(); ++i) {
    const MemberOperation& operation = batch.operations[i];
    probe.clear();
    bool fits = expand_rows(operation, columns, probe);
    if (fits) {
      (operation.type == OperationType::kAdd ? adds : removes).push_back(i);
    } else {
      outside.push_back(i);
      outside_operations.push_back(&operation);
    }
  }

  // Keys outside the schema come only from the ledger, so they are removes. An add with such
  // keys would mean the engine and the schema disagree; it also goes outside the sessions.
  std::vector<MetaColumn> covering = covering_columns(outside_operations);
  std::vector<std::size_t> outside_removes;
  std::vector<std::size_t> outside_adds;
  for (std::size_t index : outside) {
    (batch.operations[index].type == OperationType::kAdd ? outside_adds : outside_removes).push_back(index);
  }

  pack(batch, removes, columns, OperationType::kRemove, true, max_rows_per_request, plan);
  pack(batch, outside_removes, covering, OperationType::kRemove, false, max_rows_per_request, plan);
  pack(batch, adds, columns, OperationType::kAdd, true, max_rows_per_request, plan);
  pack(batch, outside_adds, covering, OperationType::kAdd, false, max_rows_per_request, plan);
  return plan;
}

}  // namespace activation::platforms::meta
