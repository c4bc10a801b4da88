#include "activation/events.hpp"

#include <algorithm>

namespace activation {

SubscriptionId EventBus::subscribe(std::string type_prefix, EventHandler handler) {
  std::lock_guard lock(mutex_);
  SubscriptionId id = next_id_++;
  subscriptions_.push_back(
      Subscription{id, std::move(type_prefix), std::make_shared<EventHandler>(std::move(handler))});
  return id;
}

void EventBus::unsubscribe(SubscriptionId id) {
  std::lock_guard lock(mutex_);
  std::erase_if(subscriptions_, [id](const Subscription& subscription) { return subscription.id == id; });
}

void EventBus::publish(const Event& event) {
  std::vector<std::shared_ptr<EventHandler>> handlers;
  {
    std::lock_guard lock(mutex_);
    for (const auto& subscription : subscriptions_) {
      if (event.type.compare(0, subscription.prefix.size(), subscription.prefix) == 0) {
        handlers.push_back(subscription.handler);
      }
    }
  }
  // One event at a time, so a subscriber receives events in the order they were published.
  std::lock_guard order(publish_mutex_);
  for (const auto& handler : handlers) {
    try {
      (*handler)(event);
    } catch (...) {
      // A subscriber's failure must not stop the distribution that published the event.
    }
  }
}

}  // namespace activation
