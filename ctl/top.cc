#include "ctl/top.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "ctl/client.h"
#include "protocol/exit_codes.h"

namespace corral::ctl {

namespace {

std::string fixed(double value, int decimals) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (b >= 1024 && u + 1 < std::size(units)) {
    b /= 1024;
    ++u;
  }
  return fixed(b, u == 0 ? 0 : 1) + units[u];
}

std::string micros(double us) {
  if (us <= 0) return "-";
  if (us < 1000) return fixed(us, 0) + "us";
  if (us < 1e6) return fixed(us / 1000, 1) + "ms";
  return fixed(us / 1e6, 2) + "s";
}

double num(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string str(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A row of cells, each padded to its column's width; left-aligned when
// LEFT[i], else right-aligned. In a narrow terminal the columns that do not
// fit are left out whole, from the right, so that every header shown names
// the column under it.
class Table {
 public:
  explicit Table(std::vector<bool> left) : left_(std::move(left)), widths_(left_.size(), 0) {}
  void row(std::vector<std::string> cells) {
    for (size_t i = 0; i < cells.size() && i < widths_.size(); ++i) {
      widths_[i] = std::max(widths_[i], display_width(cells[i]));
    }
    rows_.push_back(std::move(cells));
  }
  std::vector<std::string> lines(size_t width) const {
    size_t shown = 1;  // the first column (the names) always, clipped if need be
    for (size_t used = widths_.empty() ? 0 : widths_[0];
         shown < widths_.size() && used + 2 + widths_[shown] <= width; ++shown) {
      used += 2 + widths_[shown];
    }
    std::vector<std::string> out;
    for (const auto& cells : rows_) {
      std::string line;
      const size_t count = std::min(cells.size(), shown);
      for (size_t i = 0; i < count; ++i) {
        size_t pad = widths_[i] - display_width(cells[i]);
        if (i > 0) line += "  ";
        if (!left_[i]) line += std::string(pad, ' ');
        line += cells[i];
        if (left_[i] && i + 1 < count) line += std::string(pad, ' ');
      }
      out.push_back(line);
    }
    return out;
  }

 private:
  // UTF-8 code points: the sparkline's blocks are one column each.
  static size_t display_width(const std::string& s) {
    return static_cast<size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  }
  std::vector<bool> left_;
  std::vector<size_t> widths_;
  std::vector<std::vector<std::string>> rows_;
};

// LINE cut to WIDTH columns (UTF-8 aware).
std::string clip(const std::string& line, int width) {
  std::string out;
  int columns = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if ((line[i] & 0xC0) != 0x80) {
      if (columns == width) break;
      ++columns;
    }
    out += line[i];
  }
  return out;
}

}  // namespace

void TopHistory::add(const Json& stats) {
  auto jobs = stats.find("jobs");
  if (jobs == stats.end() || !jobs->is_object()) return;
  for (const auto& [name, job] : jobs->items()) {
    for (auto [series, key] :
         {std::pair{&tasks_per_s, "tasks_per_s"}, std::pair{&cpu_percent, "cpu_percent"}}) {
      auto& values = (*series)[name];
      values.push_back(num(job, key));
      while (values.size() > kLength) values.pop_front();
    }
  }
}

std::string sparkline(const std::deque<double>& values, size_t width) {
  static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double top = 0;
  for (double v : values) top = std::max(top, v);
  std::string out(width > values.size() ? width - values.size() : 0, ' ');
  size_t skip = values.size() > width ? values.size() - width : 0;
  for (size_t i = skip; i < values.size(); ++i) {
    size_t level = top > 0 ? static_cast<size_t>(std::lround(values[i] / top * 7)) : 0;
    out += kBlocks[std::min<size_t>(level, 7)];
  }
  return out;
}

std::string render_top(const Json& status, const Json& stats, const TopHistory& history, int width,
                       int height, const std::string& message) {
  std::vector<std::string> lines;
  const Json daemon = stats.value("daemon", Json::object());
  // The daemon's line loses its least needed parts first; "q: quit" stays.
  std::vector<std::string> parts = {
      "corrald " + str(daemon, "version"), "pid " + fixed(num(daemon, "pid"), 0),
      "cpu " + fixed(num(daemon, "cpu_s"), 1) + "s", "rss " + bytes(num(daemon, "rss_bytes"))};
  const std::string quit = "    q: quit";
  auto joined = [&] {
    std::string line;
    for (const auto& part : parts) line += (line.empty() ? "" : "  ") + part;
    return line;
  };
  while (parts.size() > 1 && static_cast<int>(joined().size() + quit.size()) > width) {
    parts.pop_back();
  }
  lines.push_back(joined() + quit);
  lines.emplace_back();
  if (!message.empty()) {
    lines.push_back(message);
  } else {
    // Delayed, cancelled and expired tasks are mostly none: their columns
    // come last, so that a narrow terminal drops them before the history bars.
    Table jobs(
        {true, false, false, false, false, false, false, false, true, true, false, false, false});
    jobs.row({"JOB", "RUN", "CPU%", "RSS", "TASKS/S", "QUEUE", "P99", "RESTARTS", "TASKS/S HISTORY",
              "CPU% HISTORY", "DELAYED", "CANCELLED", "EXPIRED"});
    const Json jobs_of = stats.value("jobs", Json::object());
    for (const auto& [name, job] : jobs_of.items()) {
      // A structured binding is named through an init-capture: clang 14
      // cannot capture one.
      auto series = [&job_name = name](const std::map<std::string, std::deque<double>>& all) {
        auto it = all.find(job_name);
        return sparkline(it == all.end() ? std::deque<double>{} : it->second, 16);
      };
      Json recent = job.value("recent_latency_us", Json::object());
      jobs.row({name, fixed(num(job, "running"), 0) + "/" + fixed(num(job, "workers"), 0),
                fixed(num(job, "cpu_percent"), 1), bytes(num(job, "rss_bytes")),
                fixed(num(job, "tasks_per_s"), 0), fixed(num(job, "queued"), 0),
                micros(num(recent, "p99")), fixed(num(job, "restarts"), 0),
                series(history.tasks_per_s), series(history.cpu_percent),
                fixed(num(job, "delayed"), 0), fixed(num(job, "cancelled"), 0),
                fixed(num(job, "expired"), 0)});
    }
    for (auto& line : jobs.lines(static_cast<size_t>(std::max(width, 0)))) {
      lines.push_back(std::move(line));
    }
    lines.emplace_back();
    Table workers({true, true, false, false, false, false, false});
    workers.row({"WORKER", "STATE", "PID", "CPU%", "RSS", "TASKS", "RESTARTS"});
    const Json workers_of = status.value("workers", Json::array());
    for (const auto& w : workers_of) {
      auto pid = w.find("pid");
      workers.row({str(w, "name"), str(w, "state"),
                   pid != w.end() && pid->is_number() ? fixed(pid->get<double>(), 0) : "-",
                   fixed(num(w, "cpu_percent"), 1), bytes(num(w, "rss_bytes")),
                   fixed(num(w, "tasks_ok") + num(w, "tasks_failed"), 0),
                   fixed(num(w, "restarts"), 0)});
    }
    for (auto& line : workers.lines(static_cast<size_t>(std::max(width, 0)))) {
      lines.push_back(std::move(line));
    }
  }
  std::string screen;
  int shown = 0;
  for (const auto& line : lines) {
    if (shown == height) break;
    screen += clip(line, width) + "\n";
    ++shown;
  }
  return screen;
}

namespace {

volatile sig_atomic_t g_quit = 0;
volatile sig_atomic_t g_resized = 0;

// The terminal as top found it, put back on every way out.
class Screen {
 public:
  Screen() {
    have_terminal_ = tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (have_terminal_) {
      termios raw = saved_;
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));  // ISIG stays: Ctrl-C quits
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSADRAIN, &raw);
    }
    write_out("\x1b[?1049h\x1b[?25l");  // alternate screen, no cursor
  }
  ~Screen() {
    write_out("\x1b[?25h\x1b[?1049l");
    if (have_terminal_) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  static void write_out(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return;
      }
      done += static_cast<size_t>(n);
    }
  }

 private:
  termios saved_{};
  bool have_terminal_ = false;
};

std::pair<int, int> terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    return {ws.ws_col, ws.ws_row};
  }
  return {100, 40};
}

// One refresh: the status and stats replies, or why they could not be had.
struct Frame {
  Json status = Json::object();
  Json stats = Json::object();
  std::string message;
};

Frame fetch(std::optional<Client>& client, const std::string& socket_path) {
  Frame frame;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!client) {
      auto connected = Client::connect(socket_path);
      if (!connected) {
        frame.message = connected.error().message() + " (retrying)";
        return frame;
      }
      client.emplace(std::move(*connected));
    }
    auto status = client->call(Json{{"cmd", "status"}});
    auto stats = status ? client->call(Json{{"cmd", "stats"}}) : ClientResult<Json>(status.error());
    if (status && stats) {
      frame.status = std::move(*status);
      frame.stats = std::move(*stats);
      frame.message.clear();
      return frame;
    }
    frame.message = (status ? stats.error() : status.error()).message() + " (retrying)";
    client.reset();  // a new connection on the next attempt
  }
  return frame;
}

}  // namespace

int run_top(const std::string& socket_path, std::chrono::milliseconds interval) {
  g_quit = 0;
  std::optional<Client> client;
  TopHistory history;
  if (!isatty(STDOUT_FILENO)) {
    // Batch mode: one screen, as `top -b -n 1`.
    Frame frame = fetch(client, socket_path);
    history.add(frame.stats);
    Screen::write_out(render_top(frame.status, frame.stats, history, 200, 10000, frame.message));
    return frame.message.empty() ? protocol::kExitOk : protocol::kExitUnreachable;
  }
  struct sigaction quit {};
  quit.sa_handler = [](int) { g_quit = 1; };
  sigemptyset(&quit.sa_mask);
  struct sigaction resize = quit;
  resize.sa_handler = [](int) { g_resized = 1; };
  struct sigaction old_int {
  }, old_term{}, old_hup{}, old_winch{};
  sigaction(SIGINT, &quit, &old_int);
  sigaction(SIGTERM, &quit, &old_term);
  sigaction(SIGHUP, &quit, &old_hup);
  sigaction(SIGWINCH, &resize, &old_winch);
  {
    Screen screen;
    Frame frame;
    auto next = std::chrono::steady_clock::now();
    while (!g_quit) {
      if (std::chrono::steady_clock::now() >= next) {
        frame = fetch(client, socket_path);
        history.add(frame.stats);
        next = std::chrono::steady_clock::now() + interval;
        g_resized = 1;
      }
      if (g_resized) {
        g_resized = 0;
        auto [width, height] = terminal_size();
        Screen::write_out("\x1b[H\x1b[2J" + render_top(frame.status, frame.stats, history, width,
                                                       height, frame.message));
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - std::chrono::steady_clock::now());
      pollfd in{STDIN_FILENO, POLLIN, 0};
      if (::poll(&in, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) > 0) {
        char key = 0;
        if (::read(STDIN_FILENO, &key, 1) <= 0) break;  // the terminal is gone
        if (key == 'q' || key == 'Q') break;
        if (key == ' ') next = std::chrono::steady_clock::now();  // refresh now
      }
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  sigaction(SIGWINCH, &old_winch, nullptr);
  return protocol::kExitOk;
}

}  // namespace corral::ctl
