#include "protocol/task_lines.h"

#include <charconv>
#include <cstring>
#include <system_error>

#include "protocol/json_text.h"

namespace corral::protocol {

namespace {

constexpr std::string_view kResultStart = R"({"id":)";
constexpr std::string_view kStatusOk = R"(,"status":"ok",)";
// `{"id":` and `,"seq":` with two numbers of at most 20 digits, then the
// status: all within this many bytes.
constexpr std::size_t kStatusWithin = 96;

// A line's fixed parts and numbers are put together in a buffer on the
// stack and appended at once: this runs once per task.
class Pieces {
 public:
  template <std::size_t N>
  void put(const char (&text)[N]) {
    std::memcpy(at_, text, N - 1);
    at_ += N - 1;
  }
  void put(uint64_t value) { at_ = std::to_chars(at_, at_ + 20, value).ptr; }
  void put(char c) { *at_++ = c; }
  // Fits when there is room for N more bytes (numbers take at most 20).
  bool fits(std::size_t n) const { return static_cast<std::size_t>(end() - at_) >= n; }
  void put(std::string_view text) {
    std::memcpy(at_, text.data(), text.size());
    at_ += text.size();
  }
  void flush_into(std::string& out) {
    out.append(buffer_, static_cast<std::size_t>(at_ - buffer_));
    at_ = buffer_;
  }
  // TEXT as a JSON string: here when it is plain and leaves room for
  // RESERVE more bytes (what a line puts after it), else appended to OUT
  // after what is here.
  void put_json_string(std::string& out, std::string_view text, std::size_t reserve) {
    if (fits(text.size() + 2 + reserve) && is_plain_json_text(text)) {
      put('"');
      put(text);
      put('"');
      return;
    }
    flush_into(out);
    append_json_string(out, text);
  }

 private:
  const char* end() const { return buffer_ + sizeof buffer_; }
  // A result line's fixed parts, numbers and a result of up to ~250 bytes.
  char buffer_[512];
  char* at_ = buffer_;
};

}  // namespace

std::string result_line(const TaskResult& task) {
  std::string line;
  line.reserve(96 + task.result.size());
  append_result_line(line, task);
  return line;
}

void append_result_line(std::string& line, const TaskResult& task) {
  Pieces p;
  p.put(R"({"id":)");
  p.put(task.id);
  p.put(R"(,"seq":)");
  p.put(task.seq);
  p.put(R"(,"status":")");
  // A status is a word; whatever its length, it goes out whole.
  if (!p.fits(task.status.size() + 16)) p.flush_into(line);
  if (p.fits(task.status.size() + 16)) {
    p.put(task.status);
  } else {
    line += task.status;
  }
  p.put(R"(","result":)");
  // What may follow the result: attempts, run_us, submit and cursor.
  constexpr std::size_t kAfterResult = 160;
  p.put_json_string(line, task.result, kAfterResult);
  p.put(R"(,"attempts":)");
  p.put(task.attempts);
  if (task.run_time) {
    // Tenths of a microsecond.
    auto tenths = static_cast<uint64_t>(task.run_time->count() / 100);
    p.put(R"(,"run_us":)");
    p.put(tenths / 10);
    p.put('.');
    p.put(static_cast<char>('0' + tenths % 10));
  }
  if (task.kept) {
    p.put(R"(,"submit":)");
    p.put(task.kept->submit);
    p.put(R"(,"cursor":)");
    p.put(task.kept->cursor);
  }
  if (!task.task.empty()) {
    p.put(R"(,"task":)");
    p.put_json_string(line, task.task, 2);
  }
  p.put("}\n");
  p.flush_into(line);
}

void append_sink_line(std::string& out, uint64_t id, std::string_view status,
                      std::string_view result, uint64_t attempts) {
  Pieces p;
  p.put(R"({"attempts":)");
  p.put(attempts);
  p.put(R"(,"id":)");
  p.put(id);
  p.put(R"(,"result":)");
  p.put_json_string(out, result, 32);
  p.put(R"(,"status":)");
  p.put_json_string(out, status, 2);
  p.put("}\n");
  p.flush_into(out);
}

std::string batch_line(const ResultBatch& batch) {
  Pieces p;
  p.put(R"({"batch":)");
  p.put(batch.count);
  p.put(R"(,"bytes":)");
  p.put(batch.bytes);
  p.put("}\n");
  std::string line;
  p.flush_into(line);
  return line;
}

namespace {

// Digits at the front of TEXT into VALUE, taken off it; false without any
// or beyond uint64_t.
bool take_number(std::string_view& text, uint64_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return true;
}

bool take_text(std::string_view& text, std::string_view expected) {
  if (!text.starts_with(expected)) return false;
  text.remove_prefix(expected.size());
  return true;
}

}  // namespace

std::optional<ResultBatch> parse_batch_line(std::string_view line) {
  ResultBatch batch;
  if (take_text(line, kBatchStart) && take_number(line, batch.count) &&
      take_text(line, R"(,"bytes":)") && take_number(line, batch.bytes) && line == "}\n") {
    return batch;
  }
  return std::nullopt;
}

bool is_ok_result_line(std::string_view line) {
  return line.starts_with(kResultStart) &&
         line.substr(0, kStatusWithin).find(kStatusOk) != std::string_view::npos;
}

}  // namespace corral::protocol
