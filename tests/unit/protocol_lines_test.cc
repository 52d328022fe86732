// Tests of protocol/task_lines.h and protocol/json_text.h: the result lines
// corrald writes by hand are JSON that reads back to the same task, and
// corralctl's fast path recognises exactly the ok ones.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json_text.h"
#include "protocol/task_lines.h"

namespace corral::protocol {
namespace {

Json read_back(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  return Json::parse(line.substr(0, line.size() - 1));
}

TEST(ResultLineTest, IsTheJsonOfTheTaskInTheDocumentedOrder) {
  std::string line = result_line({7, 3, "ok", "42", 1, std::nullopt});
  EXPECT_EQ(line, R"({"id":7,"seq":3,"status":"ok","result":"42","attempts":1})"
                  "\n");
  EXPECT_EQ(read_back(line),
            Json({{"id", 7}, {"seq", 3}, {"status", "ok"}, {"result", "42"}, {"attempts", 1}}));
}

TEST(ResultLineTest, EscapesAnyResultAndReplacesBytesThatAreNotUtf8) {
  const std::string result = "a\"b\\c\nd\te\x01";
  Json back = read_back(result_line({1, 0, "failed", result, 3, std::nullopt}));
  EXPECT_EQ(back["result"], result);
  EXPECT_EQ(back["status"], "failed");
  Json replaced = read_back(result_line({1, 0, "ok", "x\xff", 1, std::nullopt}));
  EXPECT_EQ(replaced["result"], "x\xEF\xBF\xBD");  // U+FFFD
}

TEST(ResultLineTest, WritesRunTimeInMicrosecondsWithOneDecimal) {
  std::string line = result_line({1, 0, "ok", "", 1, std::chrono::nanoseconds(12'345'678)});
  EXPECT_NE(line.find(R"("run_us":12345.6})"), std::string::npos) << line;
  EXPECT_DOUBLE_EQ(read_back(line)["run_us"].get<double>(), 12345.6);
}

// A task with STATUS and RESULT and every other field at its longest,
// appended to a line that has something before it; what reads back from
// the part appended.
struct Longest {
  std::string line;
  Json back;
};
Longest longest_line(std::string_view status, std::string_view result) {
  TaskResult task{UINT64_MAX, UINT64_MAX, status,
                  result,     UINT64_MAX, std::chrono::nanoseconds(INT64_MAX)};
  task.kept = TaskResult::Kept{UINT64_MAX, UINT64_MAX};
  task.task = "1700000000000-3";
  std::string line = "before|";
  append_result_line(line, task);
  EXPECT_TRUE(line.starts_with("before|"));
  line.erase(0, 7);
  Json back = read_back(line);
  return {std::move(line), std::move(back)};
}

TEST(ResultLineTest, EveryFieldAtItsLongestStillReadsBack) {
  const std::string status(300, 's');  // longer than the line's own buffer
  Json back = longest_line(status, "r").back;
  EXPECT_EQ(back["id"], UINT64_MAX);
  EXPECT_EQ(back["seq"], UINT64_MAX);
  EXPECT_EQ(back["status"], status);
  EXPECT_EQ(back["result"], "r");
  EXPECT_EQ(back["attempts"], UINT64_MAX);
  EXPECT_EQ(back["run_us"].get<double>(), static_cast<double>(INT64_MAX / 100 / 10));
  EXPECT_EQ(back["submit"], UINT64_MAX);
  EXPECT_EQ(back["cursor"], UINT64_MAX);
  EXPECT_EQ(back["task"], "1700000000000-3");
}

// A result is put together with the line's other parts on the stack when
// it is short and plain, else appended on its own: both ways, at every
// length around the switch, with every field after it at its longest.
TEST(ResultLineTest, ResultsOfEveryLengthReadBackWithTheFieldsAfterThem) {
  for (size_t length = 0; length < 700; ++length) {
    for (const char filler : {'x', '"'}) {
      std::string result(length, 'r');
      if (length > 0) result[length / 2] = filler;
      auto [line, back] = longest_line("ok", result);
      ASSERT_EQ(back["result"], result) << length;
      EXPECT_EQ(back["attempts"], UINT64_MAX);
      EXPECT_EQ(back["cursor"], UINT64_MAX);
      EXPECT_EQ(back["task"], "1700000000000-3");
      EXPECT_EQ(line.substr(0, line.size() - 1),
                R"({"id":18446744073709551615,"seq":18446744073709551615,"status":"ok","result":)" +
                    json_string(result) +
                    R"(,"attempts":18446744073709551615,"run_us":9223372036854775.8,)"
                    R"("submit":18446744073709551615,"cursor":18446744073709551615,)"
                    R"("task":"1700000000000-3"})");
    }
  }
}

// Consecutive numbers by incrementing the text, across every carry, and any
// other number afresh.
TEST(DecimalCounterTest, IsEachNumbersDecimalText) {
  DecimalCounter counter;
  auto expect_text = [&](uint64_t value) {
    ASSERT_EQ(counter.text_of(value), std::to_string(value)) << value;
  };
  for (uint64_t value = 0; value < 100100; ++value) expect_text(value);
  for (uint64_t value :
       {uint64_t{999999999}, uint64_t{1000000000}, uint64_t{7}, uint64_t{8}, uint64_t{5},
        uint64_t{9999999999999999999u}, uint64_t{10000000000000000000u}, UINT64_MAX - 1, UINT64_MAX,
        uint64_t{0}, uint64_t{1}, uint64_t{0}, uint64_t{19}, uint64_t{20}}) {
    expect_text(value);
  }
}

// Many lines through one ResultLines: the bytes of each line on its own,
// in order, whichever lines fill its buffer or are too long for it.
TEST(ResultLinesTest, AreTheLinesOneByOneAcrossItsBuffer) {
  std::vector<std::string> results;
  std::vector<std::string> statuses;
  std::vector<std::string> entries;  // broker tasks' entry ids
  for (size_t i = 0; i < 3000; ++i) {
    entries.push_back(i % 9 == 0 ? "1700000000000-" + std::to_string(i) : "");
    const size_t length = i % 7 == 0 ? (i * 37) % 900 : i % 13;
    std::string result(length, 'r');
    if (i % 11 == 0 && length > 0) result[length / 2] = '"';
    results.push_back(std::move(result));
    statuses.push_back(i % 500 == 1 ? std::string(300, 's') : i % 3 == 0 ? "failed" : "ok");
  }
  std::string expected = "before|";
  std::string out = "before|";
  {
    ResultLines lines(out);
    for (size_t i = 0; i < results.size(); ++i) {
      // Runs of consecutive ids, and attempts of one and more digits.
      TaskResult task{
          (i / 50) * 977 + i, i, statuses[i], results[i], 1 + i % 4 + (i % 17 == 0 ? 40 : 0),
          std::nullopt};
      if (i % 5 == 0) task.run_time = std::chrono::nanoseconds(i * 12345);
      task.task = entries[i];
      append_result_line(expected, task);
      lines.add(task);
      if (i == 1000) {
        lines.flush();
        ASSERT_EQ(out, expected);
      }
    }
  }
  EXPECT_EQ(out.size(), expected.size());
  EXPECT_EQ(out, expected);
}

TEST(SinkLineTest, IsTheJsonLibrarysLineAtEveryResultLength) {
  for (size_t length = 0; length < 700; ++length) {
    for (const char filler : {'x', '\n'}) {
      std::string result(length, 'r');
      if (length > 0) result[length / 2] = filler;
      std::string line = "before|";
      append_sink_line(line, UINT64_MAX, "failed", result, 3);
      const Json expected = {
          {"id", UINT64_MAX}, {"status", "failed"}, {"result", result}, {"attempts", 3}};
      ASSERT_EQ(line, "before|" + json_text(expected) + "\n") << length;
    }
  }
}

TEST(ResultLineTest, ABrokerTaskCarriesItsEntryIdLast) {
  TaskResult task{0, 4, "ok", "10", 2, std::nullopt};
  task.task = "1700000000000-3";
  std::string line = result_line(task);
  EXPECT_EQ(line, R"({"id":0,"seq":4,"status":"ok","result":"10","attempts":2,)"
                  R"("task":"1700000000000-3"})"
                  "\n");
  EXPECT_TRUE(is_ok_result_line(line));
}

TEST(ResultLineTest, OnlyOkResultLinesTakeTheFastPath) {
  EXPECT_TRUE(is_ok_result_line(result_line({1, 0, "ok", "r", 1, std::nullopt})));
  EXPECT_TRUE(is_ok_result_line(
      result_line({UINT64_MAX, UINT64_MAX, "ok", std::string(200, 'x'), 1, std::nullopt})));
  EXPECT_FALSE(is_ok_result_line(result_line({1, 0, "failed", "r", 2, std::nullopt})));
  EXPECT_FALSE(is_ok_result_line(result_line({1, 0, "dead", R"(,"status":"ok",)", 2, {}})));
  EXPECT_FALSE(is_ok_result_line(R"({"ok":false,"error":"x"})"));
  EXPECT_FALSE(is_ok_result_line(R"({"end":true,"submitted":1})"));
}

TEST(ResultBatchTest, ItsLineReadsBackAndNothingElseDoes) {
  EXPECT_EQ(batch_line({64, 1000, 7, 1, 4021}),
            "{\"batch\":64,\"id\":1000,\"seq\":7,\"attempts\":1,\"bytes\":4021}\n");
  for (ResultBatch batch :
       {ResultBatch{2, 17, 0, 3, 100},
        ResultBatch{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}}) {
    std::optional<ResultBatch> back = parse_batch_line(batch_line(batch));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->count, batch.count);
    EXPECT_EQ(back->id, batch.id);
    EXPECT_EQ(back->seq, batch.seq);
    EXPECT_EQ(back->attempts, batch.attempts);
    EXPECT_EQ(back->bytes, batch.bytes);
  }
  for (std::string_view other :
       {R"({"batch":2,"id":1,"seq":0,"attempts":1,"bytes":10})",
        R"({"batch":2,"id":1,"seq":0,"attempts":1,"bytes":-10})"
        "\n",
        R"({"batch":2,"id":1,"seq":0,"attempts":1,"bytes":+10})"
        "\n",
        R"({"batch":,"id":1,"seq":0,"attempts":1,"bytes":10})"
        "\n",
        R"({"batch":2,"id":1,"seq":0,"attempts":1,"bytes":10,"x":1})"
        "\n",
        R"({"batch":2, "id":1,"seq":0,"attempts":1,"bytes":10})"
        "\n",
        R"({"batch":2,"seq":0,"id":1,"attempts":1,"bytes":10})"
        "\n",
        R"({"batch":2,"id":1,"seq":0,"bytes":10})"
        "\n",
        R"({"batch":2,"bytes":10})"
        "\n",
        R"({"batch":2,"id":1,"seq":0,"attempts":1,"bytes":99999999999999999999})"
        "\n",
        R"({"id":1,"seq":0,"status":"ok","result":"1","attempts":1})"
        "\n"}) {
    EXPECT_FALSE(parse_batch_line(other)) << other;
  }
}

// Result lines with batches asked for, unpacked as a client does (each
// result of a batch through add_ok), are byte for byte the lines without:
// runs of ids and seqs with jumps in either, attempts that change, results
// that need escapes or are longer than the buffer, timing, broker entry
// ids and other statuses among them.
TEST(ResultLinesTest, InBatchesUnpackToTheSameLines) {
  std::vector<TaskResult> tasks;
  std::vector<std::string> results;
  std::vector<std::string> entries;
  results.reserve(5000);
  entries.reserve(5000);
  uint64_t id = 1000;
  uint64_t seq = 0;
  for (size_t i = 0; i < 5000; ++i) {
    const size_t length = i % 97 == 0 ? (i * 331) % 40000 : i % 7;
    std::string result(length, 'r');
    if (i % 89 == 0 && length > 0) result[length / 2] = '"';
    results.push_back(std::move(result));
    entries.push_back(i % 300 == 7 ? "1700000000000-" + std::to_string(i) : "");
    id += i % 61 == 0 ? 5 : 1;  // a jump now and then
    seq += i % 73 == 0 ? 3 : 1;
    TaskResult task{id,
                    seq,
                    i % 41 == 0 ? "failed" : "ok",
                    results.back(),
                    1 + (i / 250) % 2 + (i % 53 == 0 ? 1 : 0),
                    std::nullopt};
    if (i % 211 == 0) task.run_time = std::chrono::nanoseconds(i * 12345);
    task.task = entries.back();
    tasks.push_back(task);
  }
  std::string expected = "before|";
  for (const TaskResult& task : tasks) append_result_line(expected, task);
  std::string out = "before|";
  {
    ResultLines lines(out, true);
    for (const TaskResult& task : tasks) lines.add(task);
  }
  ASSERT_TRUE(out.starts_with("before|"));
  std::string unpacked = "before|";
  size_t batches = 0;
  size_t in_batches = 0;
  {
    ResultLines lines(unpacked);
    std::string_view rest = std::string_view(out).substr(7);
    auto next_line = [&rest] {
      const size_t newline = rest.find('\n');
      EXPECT_NE(newline, std::string_view::npos);
      std::string_view line = rest.substr(0, newline + 1);
      rest.remove_prefix(line.size());
      return line;
    };
    while (!rest.empty()) {
      std::string_view line = next_line();
      std::optional<ResultBatch> batch = parse_batch_line(line);
      if (!batch) {
        lines.flush();
        unpacked += line;
        continue;
      }
      ++batches;
      in_batches += batch->count;
      ASSERT_GE(batch->count, 1u);
      ASSERT_LE(batch->bytes, rest.size());
      std::string_view body = rest.substr(0, batch->bytes);
      rest.remove_prefix(batch->bytes);
      for (uint64_t k = 0; k < batch->count; ++k) {
        const size_t newline = body.find('\n');
        ASSERT_NE(newline, std::string_view::npos);
        std::string_view result = body.substr(0, newline);
        ASSERT_TRUE(Json::parse(result).is_string()) << result;
        lines.add_ok(batch->id + k, batch->seq + k, result, batch->attempts);
        body.remove_prefix(newline + 1);
      }
      ASSERT_TRUE(body.empty());
    }
  }
  EXPECT_EQ(unpacked, expected);
  EXPECT_GT(batches, 20u);
  EXPECT_GT(in_batches, 4000u);
  EXPECT_LT(out.size(), expected.size());
}

// A run of tiny ok results is one batch as long as the buffer holds it: its
// line, then each result's JSON string and a newline, a seventh of the lines'
// bytes.
TEST(ResultLinesTest, ARunOfTinyOkResultsIsOneBatch) {
  std::string out;
  std::string lines_without;
  {
    ResultLines lines(out, true);
    for (uint64_t i = 0; i < 1000; ++i) {
      const TaskResult task{5000 + i, i, "ok", "42", 1, std::nullopt};
      lines.add(task);
      append_result_line(lines_without, task);
    }
  }
  std::string results;
  for (int i = 0; i < 1000; ++i) results += "\"42\"\n";
  EXPECT_EQ(out, batch_line({1000, 5000, 0, 1, results.size()}) + results);
  EXPECT_LT(out.size() * 7, lines_without.size());
}

// An ok result that no other continues is its line, as without batches.
TEST(ResultLinesTest, ABatchOfOneIsALine) {
  const std::string long_result(300, 'y');
  const std::vector<TaskResult> tasks = {{7, 0, "ok", "1", 1, std::nullopt},
                                         {9, 1, "ok", "2", 1, std::nullopt},
                                         {10, 2, "failed", "x", 1, std::nullopt},
                                         {11, 3, "ok", long_result, 2, std::nullopt}};
  std::string out;
  std::string expected;
  {
    ResultLines lines(out, true);
    for (const TaskResult& task : tasks) {
      lines.add(task);
      append_result_line(expected, task);
    }
  }
  EXPECT_EQ(out, expected);
}

// A result that is already JSON gives the line append_result_line gives its
// text, at every length across the buffer's end.
TEST(ResultLinesTest, AnOkLineOfAJsonResultIsTheLineOfItsText) {
  std::string expected;
  std::string out;
  {
    ResultLines lines(out);
    for (size_t length = 0; length < 3000; length += 7) {
      std::string result(length, 'x');
      if (length > 3) result[3] = '\n';
      append_result_line(expected, {length, length * 3, "ok", result, 2, std::nullopt});
      lines.add_ok(length, length * 3, json_string(result), 2);
    }
  }
  EXPECT_EQ(out, expected);
}

TEST(JsonTextTest, WritesOneLineOrIndentedAndNeverThrowsOnBytes) {
  Json value = {{"a", 1}, {"b", "x\xff"}};
  EXPECT_EQ(json_text(value), R"({"a":1,"b":"x)"
                              "\xEF\xBF\xBD"
                              R"("})");
  EXPECT_EQ(json_text(Json::array({1}), 2), "[\n  1\n]");
  EXPECT_EQ(json_string("say \"hi\"\n"), R"("say \"hi\"\n")");
  std::string out = "[";
  append_json_string(out, "plain");
  out += ",";
  append_json_string(out, "tab\there");
  EXPECT_EQ(out, R"(["plain","tab\there")");
}

}  // namespace
}  // namespace corral::protocol
