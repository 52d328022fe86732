// The task-channel codecs: encoding frames, decoding a stream of many small
// frames or lines arriving in pipe-sized reads.
//
//   frame_bench
#include <benchmark/benchmark.h>

#include <string>

#include "ipc/frame.h"

namespace corral::ipc {
namespace {

constexpr size_t kReadBytes = 4096;  // what one pipe read typically returns

void BM_AppendTask(benchmark::State& state) {
  const std::string payload(static_cast<size_t>(state.range(0)), 'p');
  std::string out;
  uint64_t id = 0;
  for (auto _ : state) {
    if (out.size() > (1 << 16)) out.clear();
    append_task(out, id++, payload);
  }
  benchmark::DoNotOptimize(out.data());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AppendTask)->Arg(16)->Arg(64)->Arg(1024);

void BM_WriteResultBody(benchmark::State& state) {
  const std::string payload(static_cast<size_t>(state.range(0)), 'r');
  std::string dest(payload.size() + kResultHeaderBytes, '\0');
  uint64_t id = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(write_result_body(dest.data(), id++, ResultStatus::kOk, payload));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_WriteResultBody)->Arg(64);

// Decodes a stream of small frames fed in reads of 4 KiB that cut frames anywhere.
void BM_DecodeFrames(benchmark::State& state) {
  const size_t payload_bytes = static_cast<size_t>(state.range(0));
  const int frames = 10000;
  std::string stream;
  for (int i = 0; i < frames; ++i) {
    append_result(stream, i, ResultStatus::kOk, std::string(payload_bytes, 'x'));
  }
  FrameDecoder decoder(1 << 16);
  uint64_t checksum = 0;
  for (auto _ : state) {
    for (size_t at = 0; at < stream.size(); at += kReadBytes) {
      decoder.feed(std::string_view(stream).substr(at, kReadBytes));
      Frame f;
      while (decoder.next(f) == DecodeStatus::kItem) checksum += f.id + f.payload.size();
    }
  }
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * frames);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_DecodeFrames)->Arg(8)->Arg(64)->Arg(512);

void BM_ParseFrameBody(benchmark::State& state) {
  std::string frame;
  append_task(frame, 77, std::string(64, 't'));
  const std::string_view body = std::string_view(frame).substr(kLengthBytes);
  for (auto _ : state) {
    corral::Result<Frame> f = parse_frame_body(body);
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ParseFrameBody);

void BM_DecodeLines(benchmark::State& state) {
  const size_t line_bytes = static_cast<size_t>(state.range(0));
  const int lines = 10000;
  std::string stream;
  for (int i = 0; i < lines; ++i) stream += std::string(line_bytes, 'a' + i % 26) + '\n';
  LineDecoder decoder(1 << 16);
  uint64_t total = 0;
  for (auto _ : state) {
    for (size_t at = 0; at < stream.size(); at += kReadBytes) {
      decoder.feed(std::string_view(stream).substr(at, kReadBytes));
      std::string_view line;
      while (decoder.next(line) == DecodeStatus::kItem) total += line.size();
    }
  }
  benchmark::DoNotOptimize(total);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * lines);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_DecodeLines)->Arg(8)->Arg(64)->Arg(512);

}  // namespace
}  // namespace corral::ipc

BENCHMARK_MAIN();
