// The event bus: lifecycle events of distributions and alerts, delivered to subscribers in-process.
//
// Event types: distribution.started, distribution.milestone, distribution.completed,
// distribution.failed, distribution.cancelled, and alerts: alert.queue_backlog,
// alert.stalled_jobs, alert.slow_job, alert.error_rate (raised), each followed by the same type
// with ".resolved" appended when the condition clears.
#ifndef ACTIVATION_EVENTS_HPP_
#define ACTIVATION_EVENTS_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "activation/export.hpp"

namespace activation {

struct Event {
  std::string type;         // Such as "distribution.milestone".
  std::int64_t job_id = 0;  // 0 for events that concern no single job (a queue backlog).
  std::string destination;  // Empty for job-wide and queue events.
  std::chrono::system_clock::time_point time;
  std::string data = "{}";  // JSON object text with the event's details.
};

using EventHandler = std::function<void(const Event& event)>;
using SubscriptionId = std::uint64_t;

// Thread safety: all methods may be called from any thread. Handlers run on the publishing thread,
// one event at a time per bus, so a handler must not publish on the same bus. A handler that throws
// is ignored.
class ACT_EXPORT EventBus {
 public:
  // Calls `handler` for every event whose type starts with `type_prefix` ("" = every event,
  // "alert." = every alert). Returns an id for unsubscribe().
  SubscriptionId subscribe(std::string type_prefix, EventHandler handler);
  void unsubscribe(SubscriptionId id);
  void publish(const Event& event);

 private:
  struct Subscription {
    SubscriptionId id;
    std::string prefix;
    std::shared_ptr<EventHandler> handler;
  };
  std::mutex mutex_;
  std::mutex publish_mutex_;
  std::vector<Subscription> subscriptions_;
  SubscriptionId next_id_ = 1;
};

}  // namespace activation

#endif  // ACTIVATION_EVENTS_HPP_
