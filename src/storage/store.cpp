#include "activation/backend/store.hpp"

namespace activation {

Store::~Store() = default;

}  // namespace activation
