// Per-thread objects reached with one thread-local read.
//
// In a shared library, a thread_local object with a constructor or destructor costs a call to
// __tls_get_addr for its guard and another for its address, and GCC may repeat them at each use
// within a function. per_thread<T>() keeps a plain pointer in thread-local storage instead, which
// needs one read per call once the object exists.
#ifndef ACTIVATION_SRC_CORE_PER_THREAD_HPP_
#define ACTIVATION_SRC_CORE_PER_THREAD_HPP_

#include <memory>

namespace activation::internal {

template <typename T>
T& per_thread();

namespace per_thread_detail {

// The calling thread's T, or nullptr before its first use and after the thread's destructors ran.
template <typename T>
inline thread_local T* current = nullptr;

// Creates the calling thread's T, destroyed when the thread exits.
template <typename T>
[[gnu::noinline]] T* create() {
  struct Owner {
    std::unique_ptr<T> value = std::make_unique<T>();
    ~Owner() { current<T> = nullptr; }
  };
  thread_local Owner owner;
  current<T> = owner.value.get();
  return current<T>;
}

}  // namespace per_thread_detail

// Returns the calling thread's instance of T, default-constructed on first use. T must not be
// used from the destructor of another thread_local object.
template <typename T>
T& per_thread() {
  T* instance = per_thread_detail::current<T>;
  if (instance == nullptr) [[unlikely]] instance = per_thread_detail::create<T>();
  return *instance;
}

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_CORE_PER_THREAD_HPP_
