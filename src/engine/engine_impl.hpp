// The state behind DistributionEngine, shared by engine.cpp (jobs and workers) and monitoring.cpp
// (metrics and alerts).
#ifndef ACTIVATION_ENGINE_ENGINE_IMPL_HPP_
#define ACTIVATION_ENGINE_ENGINE_IMPL_HPP_

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "activation/backend/store.hpp"
#include "activation/checkpointer.hpp"
#include "activation/engine.hpp"
#include "activation/ledger.hpp"

namespace activation {

struct DistributionEngine::Impl {
  mutable std::mutex config_mutex;
  Config config;
  EngineOptions options;
  Logger logger;
  std::shared_ptr<Store> store;
  std::shared_ptr<JobQueue> queue;
  std::shared_ptr<Checkpointer> checkpointer;
  std::shared_ptr<Ledger> ledger;
  std::shared_ptr<EventBus> events;
  std::unique_ptr<ProgressTracker> progress;
  std::string outcome_path;

  std::mutex pool_mutex;
  std::unique_ptr<WorkerPool> pool;

  // The alert monitor runs while workers run in this process.
  std::mutex monitor_mutex;
  std::condition_variable monitor_wake;
  bool monitor_stop = false;
  std::thread monitor;

  DistributionEngine* owner = nullptr;  // For the monitor thread's calls to check_alerts().

  // Turns the transitions of the process's circuit breakers into "destination.circuit" events.
  std::uint64_t circuit_observer = 0;
  bool shares_rate_limits = false;  // This engine made the platform limiters draw from its store.

  std::mutex alerts_mutex;
  std::set<std::string> active_alerts;  // "<type>|<job>|<destination>"

  Status handle_job(JobContext& context);
  Result<DistributionJob> to_distribution_job(const Job& job);
  void start_monitor();
  void stop_monitor();
  WorkerPoolOptions pool_options(std::optional<int> threads) const;
};

}  // namespace activation

#endif  // ACTIVATION_ENGINE_ENGINE_IMPL_HPP_
