#include "ipc/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <utility>

namespace corral::ipc {
namespace {

constexpr uint64_t kLineBytes = 64;
constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kMinRingCapacity = 4096;
constexpr uint64_t kMaxRingCapacity = uint64_t{1} << 30;
constexpr uint32_t kMaxWorkers = 65536;
constexpr uint32_t kMaxShared = 65536;
constexpr uint64_t kMaxSharedLength = uint64_t{1} << 27;  // the config's limit for arrays
constexpr uint64_t kMaxSegmentBytes = uint64_t{1} << 36;  // 64 GiB
constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW;

static_assert(sizeof(WorkerSlot) == kLineBytes);

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// Where everything lies, computed from the counts alone, so that create()
// and attach() agree by construction and attach() can demand equality.
struct Layout {
  uint64_t slots_offset = 0;
  uint64_t shared_offset = 0;
  std::vector<uint64_t> cell_offsets;  // each shared entry's first cell, 64-aligned
  uint64_t rings_offset = 0;
  uint64_t ring_bytes = 0;
  uint64_t total = 0;
};

// The counts are within the limits above, so nothing here overflows.
Layout plan(uint32_t workers, uint64_t ring_capacity, const std::vector<uint64_t>& lengths) {
  Layout l;
  l.slots_offset = align_up(sizeof(SegmentHeader), kLineBytes);
  l.shared_offset = align_up(l.slots_offset + uint64_t{workers} * sizeof(WorkerSlot), kLineBytes);
  uint64_t at = align_up(l.shared_offset + lengths.size() * sizeof(SharedEntry), kLineBytes);
  for (uint64_t length : lengths) {
    l.cell_offsets.push_back(at);  // a line of its own: counters of one job do not false-share
    at = align_up(at + length * 8, kLineBytes);
  }
  l.rings_offset = at;
  l.ring_bytes = align_up(SpscRing::bytes_for(ring_capacity), kLineBytes);
  l.total = align_up(l.rings_offset + 2 * uint64_t{workers} * l.ring_bytes, kPageBytes);
  return l;
}

Status check_decl(const SharedDecl& d) {
  const std::string quoted = "shared \"" + d.name + "\"";
  if (d.name.empty()) return Error("a shared value or array has an empty name");
  if (d.name.size() > kMaxSharedName) {
    return Error(quoted + " has a name longer than " + std::to_string(kMaxSharedName) + " bytes");
  }
  if (d.name.find('\0') != std::string::npos) return Error(quoted + " has a NUL byte in its name");
  if (static_cast<uint32_t>(d.type) > static_cast<uint32_t>(SharedElement::kF64)) {
    return Error(quoted + " has an unknown element type " +
                 std::to_string(static_cast<uint32_t>(d.type)));
  }
  if (!d.is_array && d.length != 1) {
    return Error(quoted + " is a value of length " + std::to_string(d.length) +
                 "; only an array has a length other than 1");
  }
  if (d.length < 1 || d.length > kMaxSharedLength) {
    return Error(quoted + " has length " + std::to_string(d.length) + "; the limits are 1 to " +
                 std::to_string(kMaxSharedLength));
  }
  return {};
}

}  // namespace

Segment::Segment(Segment&& other) noexcept
    : fd_(std::move(other.fd_)),
      size_(std::exchange(other.size_, 0)),
      base_(std::exchange(other.base_, nullptr)),
      header_(other.header_),
      rings_offset_(other.rings_offset_),
      ring_bytes_(other.ring_bytes_),
      shared_names_(std::move(other.shared_names_)),
      shared_(std::move(other.shared_)),
      entries_(std::move(other.entries_)) {}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    Segment old(std::move(*this));  // unmapped and closed when it goes
    fd_ = std::move(other.fd_);
    size_ = std::exchange(other.size_, 0);
    base_ = std::exchange(other.base_, nullptr);
    header_ = other.header_;
    rings_offset_ = other.rings_offset_;
    ring_bytes_ = other.ring_bytes_;
    shared_names_ = std::move(other.shared_names_);
    shared_ = std::move(other.shared_);
    entries_ = std::move(other.entries_);
  }
  return *this;
}

Segment::~Segment() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

Result<Segment> Segment::create(const SegmentSpec& spec) {
  const std::string what = "segment of job \"" + spec.job + "\"";
  auto fail = [&what](std::string why) { return Error(std::move(why)).context(what); };
  if (spec.workers > kMaxWorkers) {
    return fail(std::to_string(spec.workers) + " workers, more than the limit of " +
                std::to_string(kMaxWorkers));
  }
  if (spec.ring_capacity > kMaxRingCapacity) {
    return fail("ring capacity of " + std::to_string(spec.ring_capacity) +
                " bytes exceeds the limit of " + std::to_string(kMaxRingCapacity));
  }
  if (spec.shared.size() > kMaxShared) {
    return fail(std::to_string(spec.shared.size()) +
                " shared values and arrays, more than the limit of " + std::to_string(kMaxShared));
  }
  std::set<std::string_view> names;
  std::vector<uint64_t> lengths;
  for (const SharedDecl& d : spec.shared) {
    if (Status checked = check_decl(d); !checked) return std::move(checked).error().context(what);
    if (!names.insert(d.name).second) {
      return fail("shared \"" + d.name + "\" is declared twice");
    }
    lengths.push_back(d.length);
  }
  uint64_t capacity = kMinRingCapacity;
  while (capacity < spec.ring_capacity) capacity *= 2;
  const Layout layout = plan(spec.workers, capacity, lengths);
  if (layout.total > kMaxSegmentBytes) {
    return fail(std::to_string(layout.total) + " bytes exceed the limit of " +
                std::to_string(kMaxSegmentBytes));
  }

  Segment seg;
  const std::string name = "corral-" + spec.job.substr(0, 240);  // memfd names stop at 249
  seg.fd_.reset(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!seg.fd_) {
    return errno_error("memfd_create").context(what);
  }
  if (::ftruncate(seg.fd_.get(), static_cast<off_t>(layout.total)) != 0) {
    return errno_error("ftruncate").context(what);
  }
  // Sealed against resizing: a worker cannot shrink it under the daemon's
  // mapping (SIGBUS), and nobody can undo the seals.
  if (::fcntl(seg.fd_.get(), F_ADD_SEALS, kSeals | F_SEAL_SEAL) != 0) {
    return errno_error("sealing the memfd").context(what);
  }
  void* base = ::mmap(nullptr, layout.total, PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd_.get(), 0);
  if (base == MAP_FAILED) {
    return errno_error("mmap").context(what);
  }
  seg.base_ = static_cast<char*>(base);
  seg.size_ = layout.total;

  // The memfd reads as zeros: every shared cell is a zero atomic already,
  // and is not touched here (a large array would be allocated for nothing).
  SegmentHeader& h = seg.header_;
  h.magic = kSegmentMagic;
  h.version = kSegmentVersion;
  h.worker_count = spec.workers;
  h.total_bytes = layout.total;
  h.ring_capacity = capacity;
  h.shared_count = static_cast<uint32_t>(spec.shared.size());
  h.slots_offset = layout.slots_offset;
  h.shared_offset = layout.shared_offset;
  spec.job.copy(h.job, sizeof h.job - 1);  // truncated; the rest stays NUL
  std::memcpy(seg.base_, &h, sizeof h);

  seg.rings_offset_ = layout.rings_offset;
  seg.ring_bytes_ = layout.ring_bytes;
  for (uint32_t w = 0; w < spec.workers; ++w) {
    auto* slot =
        std::construct_at(reinterpret_cast<WorkerSlot*>(seg.base_ + layout.slots_offset) + w);
    slot->task_ring_offset = seg.ring(w, 0) - seg.base_;
    slot->result_ring_offset = seg.ring(w, 1) - seg.base_;
    if (!SpscRing::create(seg.ring(w, 0), capacity).valid() ||
        !SpscRing::create(seg.ring(w, 1), capacity).valid()) {
      return fail("cannot lay out the rings");  // unreachable: capacity and alignment are ours
    }
  }
  auto* entries = reinterpret_cast<SharedEntry*>(seg.base_ + layout.shared_offset);
  for (size_t i = 0; i < spec.shared.size(); ++i) {
    const SharedDecl& d = spec.shared[i];
    SharedEntry e{};
    d.name.copy(e.name, kMaxSharedName);
    e.type = d.type;
    e.is_array = d.is_array ? 1 : 0;
    e.length = d.length;
    e.offset = layout.cell_offsets[i];
    std::memcpy(entries + i, &e, sizeof e);
    seg.entries_.push_back(e);
    seg.shared_names_.push_back(d.name);
  }
  for (size_t i = 0; i < spec.shared.size(); ++i) {
    const SharedDecl& d = spec.shared[i];
    seg.shared_.push_back(
        {seg.shared_names_[i], d.type, d.is_array, d.length,
         reinterpret_cast<std::atomic<uint64_t>*>(seg.base_ + layout.cell_offsets[i])});
  }
  return seg;
}

Result<Segment> Segment::attach(UniqueFd owned) {
  const int fd = owned.get();
  const std::string what = "segment fd " + std::to_string(fd);
  Segment seg;
  seg.fd_ = std::move(owned);  // closed on every failure below
  auto fail = [&what](std::string why) { return Error(std::move(why)).context(what); };
  if (fd < 0) return fail("not a file descriptor");
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return errno_error("fcntl").context(what);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return errno_error("fstat").context(what);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || size < sizeof(SegmentHeader) || size > kMaxSegmentBytes) {
    return fail(
        "not a corral segment (" +
        (S_ISREG(st.st_mode) ? std::to_string(size) + " bytes" : std::string("not a file")) + ")");
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kSeals) != kSeals) {
    return fail("not a corral segment (" +
                (seals < 0 ? errno_error("F_GET_SEALS").message()
                           : std::string("not sealed against resizing")) +
                ")");
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    return errno_error("mmap").context(what);
  }
  seg.base_ = static_cast<char*>(base);
  seg.size_ = size;

  SegmentHeader& h = seg.header_;
  std::memcpy(&h, seg.base_, sizeof h);
  if (h.magic != kSegmentMagic) return fail("not a corral segment (bad magic)");
  if (h.version != kSegmentVersion) {
    return fail("segment layout version " + std::to_string(h.version) +
                ", this program reads version " + std::to_string(kSegmentVersion));
  }
  if (h.total_bytes != size) {
    return fail("the header says " + std::to_string(h.total_bytes) + " bytes, the file has " +
                std::to_string(size));
  }
  if (std::memchr(h.job, '\0', sizeof h.job) == nullptr) return fail("job name not terminated");
  if (h.worker_count > kMaxWorkers) return fail(std::to_string(h.worker_count) + " workers");
  if (h.ring_capacity < kMinRingCapacity || h.ring_capacity > kMaxRingCapacity ||
      !SpscRing::valid_capacity(h.ring_capacity)) {
    return fail("ring capacity " + std::to_string(h.ring_capacity) +
                " is not a power of two from " + std::to_string(kMinRingCapacity) + " to " +
                std::to_string(kMaxRingCapacity));
  }
  if (h.shared_count > kMaxShared) return fail(std::to_string(h.shared_count) + " shared entries");
  // The entry table's place follows from the counts; check it before reading it.
  const Layout outline = plan(h.worker_count, h.ring_capacity, {});
  if (h.slots_offset != outline.slots_offset || h.shared_offset != outline.shared_offset) {
    return fail("slot or shared table offset out of place");
  }
  if (h.shared_offset + uint64_t{h.shared_count} * sizeof(SharedEntry) > size) {
    return fail("the shared table lies outside the segment");
  }
  std::vector<SharedEntry> entries(h.shared_count);
  if (!entries.empty()) {
    std::memcpy(entries.data(), seg.base_ + h.shared_offset, entries.size() * sizeof(SharedEntry));
  }
  std::vector<uint64_t> lengths;
  for (const SharedEntry& e : entries) {
    if (std::memchr(e.name, '\0', sizeof e.name) == nullptr) {
      return fail("a shared entry's name is not terminated");
    }
    SharedDecl d{e.name, e.type, e.is_array != 0, e.length};
    if (e.is_array > 1) {
      return fail("shared \"" + d.name + "\" is neither a value nor an array (kind " +
                  std::to_string(e.is_array) + ")");
    }
    if (Status checked = check_decl(d); !checked) return std::move(checked).error().context(what);
    lengths.push_back(e.length);
  }
  const Layout layout = plan(h.worker_count, h.ring_capacity, lengths);
  if (layout.total != size) {
    return fail("the layout needs " + std::to_string(layout.total) + " bytes, the file has " +
                std::to_string(size));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].offset != layout.cell_offsets[i]) {
      return fail("shared \"" + std::string(entries[i].name) + "\" lies at offset " +
                  std::to_string(entries[i].offset) + ", expected " +
                  std::to_string(layout.cell_offsets[i]));
    }
  }
  seg.rings_offset_ = layout.rings_offset;
  seg.ring_bytes_ = layout.ring_bytes;
  seg.entries_ = entries;
  for (const SharedEntry& e : entries) seg.shared_names_.emplace_back(e.name);
  for (size_t i = 0; i < entries.size(); ++i) {
    seg.shared_.push_back(
        {seg.shared_names_[i], entries[i].type, entries[i].is_array != 0, entries[i].length,
         reinterpret_cast<std::atomic<uint64_t>*>(seg.base_ + layout.cell_offsets[i])});
  }
  return seg;
}

char* Segment::ring(uint32_t worker, int which) const {
  return base_ + rings_offset_ + (2 * uint64_t{worker} + which) * ring_bytes_;
}

WorkerSlot& Segment::slot(uint32_t worker) const {
  if (worker >= header_.worker_count) {
    throw std::out_of_range("worker " + std::to_string(worker) + " of a segment of " +
                            std::to_string(header_.worker_count));
  }
  return reinterpret_cast<WorkerSlot*>(base_ + header_.slots_offset)[worker];
}

SpscRing Segment::attach_ring(uint32_t worker, int which) const {
  const WorkerSlot& s = slot(worker);  // the bounds check
  const uint64_t offset = which == 0 ? s.task_ring_offset : s.result_ring_offset;
  if (offset != static_cast<uint64_t>(ring(worker, which) - base_)) return SpscRing();
  SpscRing r = SpscRing::attach(ring(worker, which));
  return r.valid() && r.capacity() == header_.ring_capacity ? r : SpscRing();
}

SpscRing Segment::task_ring(uint32_t worker) const { return attach_ring(worker, 0); }

SpscRing Segment::result_ring(uint32_t worker) const { return attach_ring(worker, 1); }

Segment::Rings Segment::renew(uint32_t worker) {
  WorkerSlot& s = slot(worker);  // the bounds check
  // The header and table a new worker's attach() reads, as laid out: a
  // worker may have scribbled on them since. The bytes are the same as
  // before unless someone did, so a worker attaching meanwhile reads them
  // whole either way.
  std::memcpy(base_, &header_, sizeof header_);
  if (!entries_.empty()) {
    std::memcpy(base_ + header_.shared_offset, entries_.data(),
                entries_.size() * sizeof(SharedEntry));
  }
  s.heartbeat_ns.store(0, std::memory_order_relaxed);
  s.pid.store(0, std::memory_order_relaxed);
  s.reserved.store(0, std::memory_order_relaxed);
  s.tasks_done.store(0, std::memory_order_relaxed);
  s.task_ring_offset = static_cast<uint64_t>(ring(worker, 0) - base_);
  s.result_ring_offset = static_cast<uint64_t>(ring(worker, 1) - base_);
  // create(), not attach(): the capacity is ours (valid by construction),
  // never re-read from a header a worker can write.
  return {SpscRing::create(ring(worker, 0), header_.ring_capacity),
          SpscRing::create(ring(worker, 1), header_.ring_capacity)};
}

std::optional<SharedView> Segment::find_shared(std::string_view name) const {
  for (const SharedView& v : shared_) {
    if (v.name == name) return v;
  }
  return std::nullopt;
}

std::vector<SharedView> Segment::shared() const { return shared_; }

}  // namespace corral::ipc
