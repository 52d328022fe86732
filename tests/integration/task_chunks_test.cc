// Chunks end to end: a worker written from docs/worker-protocol.md alone
// gets TASKS frames when its READY says it takes them, single TASK frames
// when not, and every task's result under its own id and seq.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"

namespace corral::testing {
namespace {

// A length-framed worker written from docs/worker-protocol.md alone, in
// Python without the SDK: it says in READY that it takes chunks when
// TAKES_CHUNKS is 1 (and corrald offers them), logs each frame it gets
// ("task" or "tasks N") to FRAME_LOG, and answers each task with its
// payload and id.
constexpr const char* kRawLengthWorker = R"(import os, struct
fin = os.fdopen(3, "rb", buffering=0)
fout = os.fdopen(4, "wb", buffering=0)
chunks = os.environ.get("CORRAL_CHUNKS") == "1" and os.environ["TAKES_CHUNKS"] == "1"
fout.write(struct.pack("<IBI", 5, 4, 1) if chunks else struct.pack("<IB", 1, 4))
log = open(os.environ["FRAME_LOG"], "a", buffering=1)
def read(n):
    data = b""
    while len(data) < n:
        more = fin.read(n - len(data))
        if not more:
            return None
        data += more
    return data
while True:
    head = read(4)
    if head is None:
        break
    body = read(struct.unpack("<I", head)[0])
    if body[0] == 3:
        break
    tasks = []
    if body[0] == 1:
        log.write("task\n")
        tasks.append((struct.unpack("<Q", body[1:9])[0], body[9:]))
    elif body[0] == 6:
        first, count = struct.unpack("<QI", body[1:13])
        log.write("tasks %d\n" % count)
        at = 13
        for i in range(count):
            size = struct.unpack("<I", body[at:at + 4])[0]
            tasks.append((first + i, body[at + 4:at + 4 + size]))
            at += 4 + size
    for task_id, payload in tasks:
        result = payload + b"@" + str(task_id).encode()
        fout.write(struct.pack("<IBQB", 10 + len(result), 2, task_id, 0) + result)
)";

// corrald sends chunks (TASKS frames) to a worker whose READY says it takes
// them, and single TASK frames to one that does not; each task's result
// comes back under its own id and seq either way.
TEST(TaskFeedTest, ChunksGoToAWorkerThatSaysItTakesThemAndOnlyToIt) {
  TempDir scripts("corral-chunks");
  write_file(scripts.file("worker.py"), kRawLengthWorker);
  for (const std::string takes : {"1", "0"}) {
    const std::string frame_log = scripts.file("frames-" + takes + ".log");
    Daemon d("jobs:\n  raw:\n    command: [python3, " + scripts.file("worker.py") +
             "]\n    channel: pipe\n    pipe: {framing: length}\n"
             "    env: {TAKES_CHUNKS: '" +
             takes + "', FRAME_LOG: " + frame_log + "}\n");
    ASSERT_TRUE(d.start()) << d.daemon_log();
    std::vector<std::string> tasks;
    for (int i = 0; i < 3000; ++i) tasks.push_back("t" + std::to_string(i));
    auto lines = d.submit("raw", tasks);
    ASSERT_EQ(lines.size(), 3001u) << d.daemon_log();
    for (size_t i = 0; i < 3000; ++i) {
      const int seq = lines[i]["seq"];
      EXPECT_EQ(lines[i]["status"], "ok") << lines[i].dump();
      EXPECT_EQ(lines[i]["result"],
                tasks[seq] + "@" + std::to_string(lines[i]["id"].get<uint64_t>()))
          << lines[i].dump();
    }
    const std::string log = read_file(frame_log);
    size_t singles = 0;
    size_t in_chunks = 0;
    size_t largest = 0;
    std::istringstream in(log);
    for (std::string word; in >> word;) {
      if (word == "task") ++singles;
      if (word == "tasks") {
        size_t count = 0;
        in >> count;
        in_chunks += count;
        largest = std::max(largest, count);
      }
    }
    EXPECT_EQ(singles + in_chunks, 3000u) << log;
    if (takes == "1") {
      // How the tasks are cut depends on how fast results come (prefetch
      // follows the tasks' time), but the first hand-out is a chunk of the
      // worker's first prefetch (64), or of what the first read brought.
      EXPECT_GE(largest, 16u) << log;
    } else {
      EXPECT_EQ(singles, 3000u) << log;
    }
  }
}

}  // namespace
}  // namespace corral::testing
