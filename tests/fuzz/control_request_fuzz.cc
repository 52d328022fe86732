// Fuzzes the reading of one control-protocol request line
// (protocol/control.h), as corrald does before it runs a command: the JSON
// parse and the check of the command and its fields. Never a throw; a
// request that passes, encoded again, passes again unchanged; its fields
// have the types the commands read them as; its targets print and parse
// back to themselves.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/control.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using corral::fuzz::check;

using corral::protocol::Json;

void check_target(const std::string& text) {
  auto target = corral::protocol::parse_target(text);
  if (!target) {
    check(!target.error().message().empty());
    return;
  }
  check(target->all() || corral::protocol::valid_job_name(target->job));
  auto again = corral::protocol::parse_target(corral::protocol::to_string(*target));
  check(again && *again == *target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  // The same bytes as a TARGET, as corralctl and the commands read one.
  check_target(std::string(line));
  auto request = corral::protocol::parse_request_line(line);
  if (!request) {
    check(!request.error().message().empty());
    return 0;
  }
  if (auto checked = corral::protocol::check_request(*request); !checked) {
    check(!checked.error().message().empty());
    return 0;
  }

  // Each field as the commands read it; a wrong type would throw here.
  const Json& r = *request;
  for (const char* flag : {"rolling", "follow", "stderr", "wait", "running", "drained"}) {
    (void)r.value(flag, false);
  }
  for (const char* text : {"job", "target", "signal"}) {
    if (r.contains(text)) (void)r.at(text).get<std::string>();
  }
  if (r.contains("lines")) (void)r.at("lines").get<uint64_t>();
  if (r.contains("timeout_s")) {
    double seconds = r.at("timeout_s").get<double>();
    check(seconds >= 0 && seconds <= corral::protocol::kMaxTimeoutSeconds);
  }
  if (r.contains("targets") && !r.at("targets").is_null()) {
    for (const Json& target : r.at("targets")) check_target(target.get<std::string>());
  }
  if (r.contains("target")) check_target(r.at("target").get<std::string>());

  // Encoded again, the request reads back the same.
  std::string encoded = corral::protocol::encode_line(r);
  check(!encoded.empty() && encoded.back() == '\n');
  encoded.pop_back();
  check(encoded.find('\n') == std::string::npos);
  auto again = corral::protocol::parse_request_line(encoded);
  check(again && *again == r && corral::protocol::check_request(*again).ok());
  return 0;
}
