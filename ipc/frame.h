// The frames corral's task channels carry, and their codecs.
//
// Length framing (pipes with `framing: length`, and every record of the
// shared-memory rings): `u32 little-endian length of the rest | u8 type |
// body`. Bodies: TASK = u64 id, payload; RESULT = u64 id, u8 status (0 ok,
// 1 failed), payload; TASKS (a chunk of tasks with consecutive ids) = u64
// first id, u32 count, then each task's u32 length and payload; RESULTS
// (the results of consecutive tasks of chunks, shm only) = u64 first id,
// u32 count, then each result's u8 status and u32 length and payload; READY =
// nothing, or a u32 of the features the worker takes (kReadyTakesChunks)
// when the daemon's environment offers them; SHUTDOWN, HEARTBEAT = nothing.
//
// Line framing (pipes with `framing: lines`): one task per line, one result
// line per task, in order; no ids, no statuses, no control frames.
//
// Decoders take bytes in whatever pieces reads return (split or merged) and
// hand out complete frames or lines; a malformed or oversized one puts the
// decoder in an error state with a message. No dependency on anything of
// corral's but base/; no allocation per frame once warmed up. Not
// thread-safe per decoder (one reader).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::ipc {

enum class FrameType : uint8_t {
  kTask = 1,
  kResult = 2,
  kShutdown = 3,  // the sentinel: finish and exit 0
  kReady = 4,
  kHeartbeat = 5,
  kTasks = 6,    // a chunk: answered in order, by RESULT or RESULTS frames
  kResults = 7,  // the results of consecutive tasks, in order (shm workers)
};

// READY's features (a worker sends them only when CORRAL_CHUNKS=1 says the
// daemon reads them; an older daemon takes a READY with a body for garbage).
inline constexpr uint32_t kReadyTakesChunks = 1;  // TASKS frames

enum class ResultStatus : uint8_t { kOk = 0, kFailed = 1 };

inline constexpr size_t kLengthBytes = 4;            // the u32 length prefix
inline constexpr size_t kTaskHeaderBytes = 9;        // type + id
inline constexpr size_t kResultHeaderBytes = 10;     // type + id + status
inline constexpr size_t kTasksHeaderBytes = 13;      // type + first id + count
inline constexpr size_t kReadyFeaturesBytes = 5;     // type + features
inline constexpr size_t kChunkItemHeaderBytes = 4;   // a chunk's task: its u32 length
inline constexpr size_t kResultsHeaderBytes = 13;    // type + first id + count
inline constexpr size_t kResultItemHeaderBytes = 5;  // a result: u8 status, u32 length

// The most bytes a chunk's tasks (lengths included) may take so that its
// TASKS frame is no longer than the longest TASK frame: whatever carries one
// task of MAX_TASK_BYTES carries the chunk.
constexpr size_t max_chunk_bytes(size_t max_task_bytes) {
  constexpr size_t extra = kTasksHeaderBytes - kTaskHeaderBytes;
  return max_task_bytes > extra ? max_task_bytes - extra : 0;
}

struct Frame {
  FrameType type = FrameType::kTask;
  uint64_t id = 0;                          // TASK, RESULT; TASKS: the first task's
  ResultStatus status = ResultStatus::kOk;  // RESULT
  uint32_t count = 0;                       // TASKS, RESULTS: how many (checked: at least one)
  uint32_t features = 0;                    // READY
  // TASK, RESULT: the payload; TASKS: the tasks, each length and payload
  // (checked; read them with take_chunk_item); RESULTS: the results, each
  // status, length and payload (checked; take_result_item). Points into the
  // decoder.
  std::string_view payload;
};

// Appends one complete frame (length prefix included) to OUT.
void append_task(std::string& out, uint64_t id, std::string_view payload);
void append_result(std::string& out, uint64_t id, ResultStatus status, std::string_view payload);
void append_control(std::string& out, FrameType type);   // SHUTDOWN, READY, HEARTBEAT
void append_ready(std::string& out, uint32_t features);  // READY with its features
// A TASKS frame of COUNT tasks with ids FIRST_ID.., ITEMS as append_chunk_item made them.
void append_tasks(std::string& out, uint64_t first_id, uint32_t count, std::string_view items);
// A RESULTS frame, ITEMS as append_result_item made them.
void append_results(std::string& out, uint64_t first_id, uint32_t count, std::string_view items);

// A chunk's tasks: appends one task (its u32 length, then PAYLOAD) to ITEMS.
void append_chunk_item(std::string& items, std::string_view payload);
// The payload of the first task of ITEMS (well formed: the daemon's own, or
// a TASKS frame that parse_frame_body accepted); ITEMS moves past it.
std::string_view take_chunk_item(std::string_view& items);

// A RESULTS frame's results: appends one (its status, u32 length, PAYLOAD)
// to ITEMS.
void append_result_item(std::string& items, ResultStatus status, std::string_view payload);
struct ResultItem {
  ResultStatus status = ResultStatus::kOk;
  std::string_view payload;
};
// The first result of ITEMS (of a RESULTS frame parse_frame_body accepted,
// or append_result_item's); ITEMS moves past it.
ResultItem take_result_item(std::string_view& items);

// Writes the part of a frame after its length prefix (type and body) into
// DEST, which has room for it; returns the bytes written. For the rings,
// which keep their own record lengths.
size_t write_task_body(char* dest, uint64_t id, std::string_view payload);
size_t write_result_body(char* dest, uint64_t id, ResultStatus status, std::string_view payload);
size_t write_tasks_body(char* dest, uint64_t first_id, uint32_t count, std::string_view items);
size_t write_results_body(char* dest, uint64_t first_id, uint32_t count, std::string_view items);
// READY with its features (kReadyFeaturesBytes).
size_t write_ready_body(char* dest, uint32_t features);

// Parses the part of a frame after its length prefix; the frame's payload
// points into BODY. An error for an unknown type, a body too short for its
// type, a control frame with a body (but READY's features), a result status
// other than 0 and 1, or a TASKS or RESULTS frame whose items do not fill
// its body exactly with COUNT (at least one).
Result<Frame> parse_frame_body(std::string_view body);

// What a decoder's next() found: a streaming decoder has three answers, not
// two (kNeedMore is no error), so this stays an enum, with the message of
// kError in the decoder's error().
enum class DecodeStatus { kItem, kNeedMore, kError };

class FrameDecoder {
 public:
  // A frame whose length (the value of its u32 prefix: type and body)
  // exceeds MAX_FRAME_BYTES is an error, found as soon as the prefix is in
  // (a peer that writes garbage must not make the reader allocate
  // gigabytes).
  explicit FrameDecoder(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  void feed(std::string_view bytes);
  // kItem: FRAME holds the next frame, valid until the next feed() or next().
  DecodeStatus next(Frame& frame);
  const std::string& error() const { return error_; }
  // Bytes received and not yet handed out as frames.
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;  // where the next frame begins in buffer_
  size_t max_frame_bytes_;
  std::string error_;
};

class LineDecoder {
 public:
  // A line longer than MAX_LINE_BYTES ('\n' excluded) is an error.
  explicit LineDecoder(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  void feed(std::string_view bytes);
  // kItem: LINE holds the next line without its '\n', valid until the next
  // feed() or next().
  DecodeStatus next(std::string_view& line);
  const std::string& error() const { return error_; }
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;
  size_t scanned_ = 0;  // bytes after start_ known to hold no '\n'
  size_t max_line_bytes_;
  std::string error_;
};

}  // namespace corral::ipc
