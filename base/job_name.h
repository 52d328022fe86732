// The rule for the names a user gives a job (and a shared value or array of
// a job): letters, digits, '_', '.' and '-', and neither "." nor "..". A job
// name ends up in file names (its log, its sink), so a name that is a
// directory of its own is out. The config refuses a job so named and the
// control protocol a target so named, by this one rule.
//
// Header-only and dependent on nothing of corral's (base/); pure, safe from
// any thread.
#pragma once

#include <algorithm>
#include <string_view>

namespace corral {

inline bool valid_job_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
         });
}

}  // namespace corral
