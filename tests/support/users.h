// The unprivileged account tests run things as (when they run as root): the
// ids of nobody and nogroup, fixed on the Debian systems corral supports.
#pragma once

#include <sys/types.h>

namespace corral::testing {

constexpr uid_t kNobodyUid = 65534;
constexpr gid_t kNogroupGid = 65534;

}  // namespace corral::testing
