#include "protocol/task_lines.h"

#include <charconv>

#include "protocol/json_text.h"

namespace corral::protocol {

namespace {

void append_number(std::string& out, uint64_t value) {
  char digits[20];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

constexpr std::string_view kResultStart = R"({"id":)";
constexpr std::string_view kStatusOk = R"(,"status":"ok",)";
// `{"id":` and `,"seq":` with two numbers of at most 20 digits, then the
// status: all within this many bytes.
constexpr std::size_t kStatusWithin = 96;

}  // namespace

std::string result_line(const TaskResult& task) {
  std::string line;
  line.reserve(96 + task.result.size());
  append_result_line(line, task);
  return line;
}

void append_result_line(std::string& line, const TaskResult& task) {
  line += kResultStart;
  append_number(line, task.id);
  line += R"(,"seq":)";
  append_number(line, task.seq);
  line += R"(,"status":")";
  line += task.status;
  line += R"(","result":)";
  append_json_string(line, task.result);
  line += R"(,"attempts":)";
  append_number(line, task.attempts);
  if (task.run_time) {
    // Tenths of a microsecond.
    auto tenths = static_cast<uint64_t>(task.run_time->count() / 100);
    line += R"(,"run_us":)";
    append_number(line, tenths / 10);
    line.push_back('.');
    line.push_back(static_cast<char>('0' + tenths % 10));
  }
  if (task.kept) {
    line += R"(,"submit":)";
    append_number(line, task.kept->submit);
    line += R"(,"cursor":)";
    append_number(line, task.kept->cursor);
  }
  if (!task.task.empty()) {
    line += R"(,"task":)";
    append_json_string(line, task.task);
  }
  line.push_back('}');
  line.push_back('\n');
}

bool is_ok_result_line(std::string_view line) {
  return line.starts_with(kResultStart) &&
         line.substr(0, kStatusWithin).find(kStatusOk) != std::string_view::npos;
}

}  // namespace corral::protocol
