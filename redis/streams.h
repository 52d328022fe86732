// The shapes of Redis Streams' replies (Redis 7, RESP2) as corral reads
// them: entries of XREADGROUP and XRANGE, XAUTOCLAIM's three parts, and
// XPENDING's extended form. Pure: a reply in, entries or a clear error out
// ("XREADGROUP reply: an entry without an id"), never a crash on a reply
// of another shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "redis/reply.h"

namespace corral::redis {

// One entry: "1700000000000-0" and its field-value pairs, in order. An entry
// that was deleted while pending comes back from XREADGROUP (reading the
// pending history) and XCLAIM with no fields at all: DELETED says so.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  bool deleted = false;
  // The value of field NAME, or null.
  const std::string* field(std::string_view name) const;
  bool operator==(const StreamEntry&) const = default;
};

// XREADGROUP / XREAD reply for one stream: [[stream, [entry...]]], or nil
// when BLOCK timed out (no entries).
Result<std::vector<StreamEntry>> read_entries(const Reply& reply);
// XRANGE / XREVRANGE / XCLAIM reply: [entry...].
Result<std::vector<StreamEntry>> entry_list(const Reply& reply);

// XAUTOCLAIM reply: [next start, [entry...], [ids deleted meanwhile]].
struct Claimed {
  std::string next;  // "0-0" once the whole pending list was scanned
  std::vector<StreamEntry> entries;
  std::vector<std::string> deleted;
};
Result<Claimed> claimed(const Reply& reply);

// XPENDING KEY GROUP [IDLE ms] START END COUNT [CONSUMER]:
// [[id, consumer, idle ms, times delivered], ...].
struct PendingEntry {
  std::string id;
  std::string consumer;
  int64_t idle_ms = 0;
  int64_t deliveries = 0;
  bool operator==(const PendingEntry&) const = default;
};
Result<std::vector<PendingEntry>> pending_entries(const Reply& reply);

// XINFO GROUPS KEY: the group named NAME's counts. LAG is -1 where Redis
// cannot say (it answers nil after deletions it cannot account for).
struct GroupInfo {
  int64_t consumers = 0;
  int64_t pending = 0;
  int64_t lag = -1;
  bool operator==(const GroupInfo&) const = default;
};
// An error when the reply has no group NAME.
Result<GroupInfo> group_info(const Reply& reply, std::string_view name);

// A stream id's two numbers ("1700000000000-5" -> {1700000000000, 5}), or
// nullopt; ids compare by them, not as text.
std::optional<std::pair<uint64_t, uint64_t>> parse_stream_id(std::string_view id);

}  // namespace corral::redis
