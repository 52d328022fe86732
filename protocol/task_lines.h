// The lines of a submit stream once corrald has accepted its request
// (docs/control-protocol.md, "submit"): the client's task lines, `+PAYLOAD`
// and a last `.`, and corrald's result lines. There is one of each per task,
// so both ends take fast paths: corrald writes a result line by hand, and
// corralctl copies an ok one as it is, without parsing it. Both rely on the
// exact shape written here, which is why it is written once. Pure functions;
// thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/control.h"

namespace corral::protocol {

// A task line is the mark, then the payload: one line of the protocol.
inline constexpr char kTaskMark = '+';
inline constexpr std::size_t kMaxPayloadBytes = kMaxLineBytes - 1;
// The line that ends the tasks.
inline constexpr std::string_view kEndOfTasks = ".";

// A finished task, as its result line tells it.
struct TaskResult {
  uint64_t id = 0;
  uint64_t seq = 0;         // its 0-based position in its submit
  std::string_view status;  // ok, failed or dead
  std::string_view result;  // any bytes
  uint64_t attempts = 0;
  // With timing: from corrald handing it to a worker to corrald reading its
  // result; written as run_us, in microseconds with one decimal.
  std::optional<std::chrono::nanoseconds> run_time;
  // A durable job's kept result (`results`): its submit and its cursor.
  struct Kept {
    uint64_t submit = 0;
    uint64_t cursor = 0;
  };
  std::optional<Kept> kept;
  // A broker job's task: its entry's id in the stream ("1700000000000-0");
  // written as "task" (the id is then 0: it may have run on another node).
  std::string_view task;
};

// {"id":N,"seq":N,"status":"S","result":"R","attempts":N[,"run_us":U.D]
// [,"submit":N,"cursor":N][,"task":"T"]} and '\n': the fields in this order,
// without blanks.
std::string result_line(const TaskResult& task);
// The same line, appended to OUT (one per task: no allocation once OUT has
// grown).
void append_result_line(std::string& out, const TaskResult& task);

// A number's decimal digits, kept for the next one: the ids and seqs of a
// run of results are consecutive, and each costs an increment of the text
// instead of a conversion.
class DecimalCounter {
 public:
  std::string_view text_of(uint64_t value);

 private:
  static constexpr std::size_t kDigits = 20;  // UINT64_MAX's
  char digits_[kDigits] = {};                 // right-aligned
  std::size_t size_ = 0;                      // 0: none yet
  uint64_t value_ = 0;
};

// A batch of ok results (a submit that asked for "batches"): the line
// {"batch":N,"id":I,"seq":S,"attempts":A,"bytes":B} and '\n', then B bytes:
// N results, each its JSON string (as in a result line) and '\n'. They
// stand for N ok result lines, of ids I, I+1, ... and seqs S, S+1, ..., each
// with A attempts: 7 bytes a tiny result instead of a line's 60 to 70.
struct ResultBatch {
  uint64_t count = 0;
  uint64_t id = 0;
  uint64_t seq = 0;
  uint64_t attempts = 0;
  uint64_t bytes = 0;
};
inline constexpr std::string_view kBatchStart = R"({"batch":)";
// The most a batch line takes, every number at its longest.
inline constexpr std::size_t kBatchLineRoom = 160;
// The batch line of BATCH.
std::string batch_line(const ResultBatch& batch);
// LINE ('\n' included) as batch_line writes it; nullopt for any other line.
std::optional<ResultBatch> parse_batch_line(std::string_view line);

// Result lines appended to OUT through a buffer here, which goes to OUT
// whenever it fills and at the end: one append for many short lines.
class ResultLines {
 public:
  // With BATCHES, the ok results that can go in a batch do (those without
  // run_us, kept cursor or broker entry id, each result plain JSON text):
  // a batch of two or more of those in a row whose ids and seqs go up by
  // one and whose attempts are the same (one alone is a line).
  explicit ResultLines(std::string& out, bool batches = false) : out_(out), batches_(batches) {}
  ~ResultLines() { flush(); }
  ResultLines(const ResultLines&) = delete;
  ResultLines& operator=(const ResultLines&) = delete;
  void add(const TaskResult& task);
  // The ok result line of ID, SEQ and ATTEMPTS whose result is JSON_RESULT,
  // already a JSON string: a result of a batch, unpacked.
  void add_ok(uint64_t id, uint64_t seq, std::string_view json_result, uint64_t attempts);
  void flush();

 private:
  // TASK's line; with RESULT_IS_JSON its result is already a JSON string.
  void add_line(const TaskResult& task, bool result_is_json);
  bool batchable(const TaskResult& task) const;
  void add_to_batch(const TaskResult& task);
  // The open batch, if any, to OUT: its line, then its results.
  void end_batch();

  std::string& out_;
  const bool batches_;
  std::size_t used_ = 0;
  // Open while its count is over 0: its results are in the buffer from
  // kBatchLineRoom, the room before them kept for its line.
  ResultBatch batch_;
  DecimalCounter id_;
  DecimalCounter seq_;
  char buffer_[16 << 10];
};

// A line of a job's sink (docs/tasks.md): {"attempts":N,"id":N,
// "result":"R","status":"S"} and '\n', the keys in this order (as the JSON
// library sorts them), appended to OUT.
void append_sink_line(std::string& out, uint64_t id, std::string_view status,
                      std::string_view result, uint64_t attempts);

// Whether LINE is a result line of status ok as result_line writes it. Only
// its start is read: the status comes before the result, and its pattern
// cannot match inside a string value, where quotes are escaped.
bool is_ok_result_line(std::string_view line);

}  // namespace corral::protocol
