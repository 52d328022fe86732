#include "redis/streams.h"

#include <charconv>

namespace corral::redis {
namespace {

Error shape(std::string_view what, std::string_view why, const Reply& reply) {
  std::string seen = describe(reply);
  if (seen.size() > 200) seen = seen.substr(0, 200) + "...";
  return Error(std::string(what) + " reply: " + std::string(why) + " (got " + seen + ")");
}

// [id, [field, value, ...]] or [id, nil].
Result<StreamEntry> entry(std::string_view what, const Reply& r) {
  if (!r.is_array() || r.elements.size() != 2)
    return shape(what, "an entry is not [id, fields]", r);
  const Reply& id = r.elements[0];
  const Reply& fields = r.elements[1];
  if (!id.is_string() || id.text.empty()) return shape(what, "an entry without an id", r);
  StreamEntry e;
  e.id = id.text;
  if (fields.is_nil()) {
    e.deleted = true;
    return e;
  }
  if (!fields.is_array() || fields.elements.size() % 2 != 0) {
    return shape(what, "an entry's fields are not pairs", r);
  }
  e.fields.reserve(fields.elements.size() / 2);
  for (size_t i = 0; i < fields.elements.size(); i += 2) {
    const Reply& name = fields.elements[i];
    const Reply& value = fields.elements[i + 1];
    if (!name.is_string() || !value.is_string()) {
      return shape(what, "a field or value is not a string", r);
    }
    e.fields.emplace_back(name.text, value.text);
  }
  return e;
}

Result<std::vector<StreamEntry>> entries(std::string_view what, const Reply& r) {
  if (!r.is_array()) return shape(what, "not a list of entries", r);
  std::vector<StreamEntry> out;
  out.reserve(r.elements.size());
  for (const Reply& element : r.elements) {
    auto e = entry(what, element);
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  return out;
}

std::optional<int64_t> integer_of(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  return std::nullopt;
}

}  // namespace

const std::string* StreamEntry::field(std::string_view name) const {
  for (const auto& [key, value] : fields) {
    if (key == name) return &value;
  }
  return nullptr;
}

Result<std::vector<StreamEntry>> read_entries(const Reply& reply) {
  constexpr std::string_view kWhat = "XREADGROUP";
  if (reply.is_error()) return Error(std::string(kWhat) + ": " + reply.text);
  if (reply.is_nil()) return std::vector<StreamEntry>{};
  if (!reply.is_array() || reply.elements.size() != 1) {
    return shape(kWhat, "not [[stream, entries]] for one stream", reply);
  }
  const Reply& stream = reply.elements[0];
  if (!stream.is_array() || stream.elements.size() != 2 || !stream.elements[0].is_string()) {
    return shape(kWhat, "not [stream, entries]", reply);
  }
  return entries(kWhat, stream.elements[1]);
}

Result<std::vector<StreamEntry>> entry_list(const Reply& reply) {
  if (reply.is_error()) return Error(reply.text);
  return entries("XRANGE", reply);
}

Result<Claimed> claimed(const Reply& reply) {
  constexpr std::string_view kWhat = "XAUTOCLAIM";
  if (reply.is_error()) return Error(std::string(kWhat) + ": " + reply.text);
  // Redis 7 answers three parts; 6.2 answered two (no deleted ids).
  if (!reply.is_array() || reply.elements.size() < 2 || reply.elements.size() > 3 ||
      !reply.elements[0].is_string()) {
    return shape(kWhat, "not [next, entries, deleted]", reply);
  }
  Claimed out;
  out.next = reply.elements[0].text;
  auto list = entries(kWhat, reply.elements[1]);
  if (!list) return list.error();
  out.entries = std::move(*list);
  if (reply.elements.size() == 3) {
    const Reply& deleted = reply.elements[2];
    if (!deleted.is_array()) return shape(kWhat, "its deleted ids are not a list", reply);
    for (const Reply& id : deleted.elements) {
      if (!id.is_string()) return shape(kWhat, "a deleted id is not a string", reply);
      out.deleted.push_back(id.text);
    }
  }
  return out;
}

Result<std::vector<PendingEntry>> pending_entries(const Reply& reply) {
  constexpr std::string_view kWhat = "XPENDING";
  if (reply.is_error()) return Error(std::string(kWhat) + ": " + reply.text);
  if (!reply.is_array()) return shape(kWhat, "not a list", reply);
  std::vector<PendingEntry> out;
  out.reserve(reply.elements.size());
  for (const Reply& r : reply.elements) {
    if (!r.is_array() || r.elements.size() != 4 || !r.elements[0].is_string() ||
        !r.elements[1].is_string()) {
      return shape(kWhat, "an entry is not [id, consumer, idle, deliveries]", reply);
    }
    auto idle = integer_of(r.elements[2]);
    auto deliveries = integer_of(r.elements[3]);
    if (!idle || !deliveries) return shape(kWhat, "idle or deliveries is not a number", reply);
    out.push_back(PendingEntry{r.elements[0].text, r.elements[1].text, *idle, *deliveries});
  }
  return out;
}

std::optional<std::pair<uint64_t, uint64_t>> parse_stream_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size()) return std::nullopt;
  uint64_t ms = 0, seq = 0;
  auto whole = [](std::string_view text, uint64_t& value) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
  };
  if (!whole(id.substr(0, dash), ms) || !whole(id.substr(dash + 1), seq)) return std::nullopt;
  return std::make_pair(ms, seq);
}

Result<GroupInfo> group_info(const Reply& reply, std::string_view name) {
  constexpr std::string_view kWhat = "XINFO GROUPS";
  if (!reply.is_array()) return shape(kWhat, "not a list of groups", reply);
  for (const Reply& group : reply.elements) {
    if (!group.is_array() || group.elements.size() % 2 != 0) {
      return shape(kWhat, "a group is not a list of names and values", group);
    }
    GroupInfo info;
    bool named = false;
    for (size_t i = 0; i < group.elements.size(); i += 2) {
      const Reply& key = group.elements[i];
      const Reply& value = group.elements[i + 1];
      if (!key.is_string()) return shape(kWhat, "a name is not a string", group);
      if (key.text == "name") {
        named = value.is_string() && value.text == name;
      } else if (key.text == "consumers") {
        info.consumers = integer_of(value).value_or(0);
      } else if (key.text == "pending") {
        info.pending = integer_of(value).value_or(0);
      } else if (key.text == "lag") {
        info.lag = integer_of(value).value_or(-1);
      }
    }
    if (named) return info;
  }
  return Error(std::string(kWhat) + " reply: no group \"" + std::string(name) + "\"");
}

}  // namespace corral::redis
