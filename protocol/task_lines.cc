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

// A line's fixed parts and numbers are put together in a buffer (on the
// stack) and appended at once: this runs once per task. The buffer may hold
// lines before this one: they go first whenever it is flushed.
class Pieces {
 public:
  // BEGIN..END is the buffer, the first USED bytes of it taken.
  Pieces(char* begin, char* end, std::size_t used = 0)
      : begin_(begin), end_(end), at_(begin + used) {}
  std::size_t used() const { return static_cast<std::size_t>(at_ - begin_); }

  template <std::size_t N>
  void put(const char (&text)[N]) {
    std::memcpy(at_, text, N - 1);
    at_ += N - 1;
  }
  void put(uint64_t value) {
    if (value < 10) {
      *at_++ = static_cast<char>('0' + value);  // an attempt count, mostly
    } else {
      at_ = std::to_chars(at_, at_ + 20, value).ptr;
    }
  }
  void put(char c) { *at_++ = c; }
  // Fits when there is room for N more bytes (numbers take at most 20).
  bool fits(std::size_t n) const { return static_cast<std::size_t>(end() - at_) >= n; }
  void put(std::string_view text) {
    std::memcpy(at_, text.data(), text.size());
    at_ += text.size();
  }
  void flush_into(std::string& out) {
    out.append(begin_, used());
    at_ = begin_;
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
  const char* end() const { return end_; }
  char* begin_;
  char* end_;
  char* at_;
};

// The most a result line takes before its result and after it, with every
// number at its longest: each line starts with this much room.
constexpr std::size_t kLineRoom = 256;

// TASK's line through P, which has kLineRoom bytes of room, its id and seq
// written as ID and SEQ; what does not fit goes to OUT after what P holds.
// With RESULT_IS_JSON, the task's result is already a JSON string.
void put_result_line(Pieces& p, std::string& out, const TaskResult& task, std::string_view id,
                     std::string_view seq, bool result_is_json = false) {
  p.put(R"({"id":)");
  p.put(id);
  p.put(R"(,"seq":)");
  p.put(seq);
  p.put(R"(,"status":")");
  // A status is a word; whatever its length, it goes out whole.
  if (!p.fits(task.status.size() + 16)) p.flush_into(out);
  if (p.fits(task.status.size() + 16)) {
    p.put(task.status);
  } else {
    out += task.status;
  }
  p.put(R"(","result":)");
  // What may follow the result: attempts, run_us, submit and cursor.
  constexpr std::size_t kAfterResult = 160;
  if (!result_is_json) {
    p.put_json_string(out, task.result, kAfterResult);
  } else if (p.fits(task.result.size() + kAfterResult)) {
    p.put(task.result);
  } else {
    p.flush_into(out);
    out += task.result;
  }
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
    p.put_json_string(out, task.task, 2);
  }
  p.put("}\n");
}

// BATCH's line through P, which has kBatchLineRoom bytes of room.
void put_batch_line(Pieces& p, const ResultBatch& batch) {
  p.put(R"({"batch":)");
  p.put(batch.count);
  p.put(R"(,"id":)");
  p.put(batch.id);
  p.put(R"(,"seq":)");
  p.put(batch.seq);
  p.put(R"(,"attempts":)");
  p.put(batch.attempts);
  p.put(R"(,"bytes":)");
  p.put(batch.bytes);
  p.put("}\n");
}

}  // namespace

std::string result_line(const TaskResult& task) {
  std::string line;
  line.reserve(96 + task.result.size());
  append_result_line(line, task);
  return line;
}

void append_result_line(std::string& line, const TaskResult& task) {
  // A result line's fixed parts, numbers and a result of up to ~250 bytes.
  char buffer[2 * kLineRoom];
  Pieces p(buffer, buffer + sizeof buffer);
  char id[20];
  char seq[20];
  put_result_line(p, line, task, std::string_view(id, std::to_chars(id, id + 20, task.id).ptr),
                  std::string_view(seq, std::to_chars(seq, seq + 20, task.seq).ptr));
  p.flush_into(line);
}

std::string_view DecimalCounter::text_of(uint64_t value) {
  char* const first = digits_ + kDigits - size_;
  if (size_ > 0 && value == value_ + 1 && value != 0) {
    // Add one to the digits: the nines at the end become zeros, and the
    // digit before them goes up (a new leading 1 after all nines).
    char* d = digits_ + kDigits - 1;
    while (d >= first && *d == '9') *d-- = '0';
    if (d >= first) {
      ++*d;
    } else {
      *d = '1';
      ++size_;
    }
  } else {
    char text[kDigits];
    const char* end = std::to_chars(text, text + kDigits, value).ptr;
    size_ = static_cast<std::size_t>(end - text);
    std::memcpy(digits_ + kDigits - size_, text, size_);
  }
  value_ = value;
  return {digits_ + kDigits - size_, size_};
}

void ResultLines::add(const TaskResult& task) {
  if (batches_ && batchable(task)) return add_to_batch(task);
  add_line(task, false);
}

void ResultLines::add_ok(uint64_t id, uint64_t seq, std::string_view json_result,
                         uint64_t attempts) {
  add_line({.id = id, .seq = seq, .status = "ok", .result = json_result, .attempts = attempts},
           true);
}

void ResultLines::add_line(const TaskResult& task, bool result_is_json) {
  end_batch();
  if (sizeof buffer_ - used_ < kLineRoom) flush();
  Pieces p(buffer_, buffer_ + sizeof buffer_, used_);
  put_result_line(p, out_, task, id_.text_of(task.id), seq_.text_of(task.seq), result_is_json);
  used_ = p.used();
}

bool ResultLines::batchable(const TaskResult& task) const {
  return task.status == "ok" && !task.run_time && !task.kept && task.task.empty();
}

void ResultLines::add_to_batch(const TaskResult& task) {
  // The room a result takes in a batch: its quotes and its newline.
  const std::size_t room = task.result.size() + 3;
  const bool next = batch_.count > 0 && task.id == batch_.id + batch_.count &&
                    task.seq == batch_.seq + batch_.count && task.attempts == batch_.attempts;
  if (batch_.count > 0 && (!next || sizeof buffer_ - used_ < room)) end_batch();
  if (room > sizeof buffer_ - kBatchLineRoom || !is_plain_json_text(task.result)) {
    return add_line(task, false);  // too long or in need of escapes: a line of its own
  }
  if (batch_.count == 0) {
    flush();
    batch_ = {.count = 0, .id = task.id, .seq = task.seq, .attempts = task.attempts, .bytes = 0};
    used_ = kBatchLineRoom;
  }
  char* at = buffer_ + used_;
  *at++ = '"';
  std::memcpy(at, task.result.data(), task.result.size());
  at += task.result.size();
  *at++ = '"';
  *at++ = '\n';
  used_ += room;
  ++batch_.count;
}

void ResultLines::end_batch() {
  if (batch_.count == 0) return;
  if (batch_.count == 1) {
    // A batch of one goes as its line: no longer, and read faster.
    const TaskResult task{.id = batch_.id,
                          .seq = batch_.seq,
                          .status = "ok",
                          .result = std::string_view(buffer_ + kBatchLineRoom,
                                                     used_ - kBatchLineRoom - 1),  // no '\n'
                          .attempts = batch_.attempts};
    char line[2 * kLineRoom];
    Pieces p(line, line + sizeof line);
    put_result_line(p, out_, task, id_.text_of(task.id), seq_.text_of(task.seq), true);
    p.flush_into(out_);
    used_ = 0;
    batch_.count = 0;
    return;
  }
  batch_.bytes = used_ - kBatchLineRoom;
  // The batch line right before the results, and both out at once.
  char line[kBatchLineRoom];
  Pieces p(line, line + sizeof line);
  put_batch_line(p, batch_);
  char* const start = buffer_ + kBatchLineRoom - p.used();
  std::memcpy(start, line, p.used());
  out_.append(start, buffer_ + used_);
  used_ = 0;
  batch_.count = 0;
}

void ResultLines::flush() {
  if (batch_.count > 0) return end_batch();
  out_.append(buffer_, used_);
  used_ = 0;
}

void append_sink_line(std::string& out, uint64_t id, std::string_view status,
                      std::string_view result, uint64_t attempts) {
  char buffer[2 * kLineRoom];
  Pieces p(buffer, buffer + sizeof buffer);
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
  char buffer[kBatchLineRoom];
  Pieces p(buffer, buffer + sizeof buffer);
  put_batch_line(p, batch);
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
      take_text(line, R"(,"id":)") && take_number(line, batch.id) &&
      take_text(line, R"(,"seq":)") && take_number(line, batch.seq) &&
      take_text(line, R"(,"attempts":)") && take_number(line, batch.attempts) &&
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
