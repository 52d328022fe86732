// The spawn server's socket (spawn_server.h): what corrald sends, what the
// server answers, and the server's loop.
//
// The encoding is flat and in the machine's byte order: both ends are built
// from this file in one build (corrald, and corral-spawn or corrald's own
// fork of itself). kGreeting names the build's protocol; corral-spawn is
// told the one corrald speaks and refuses to serve another, so a corrald
// never talks to a corral-spawn of another version (one replaced on disk by
// an upgrade, say).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "daemon/spawner.h"

namespace corral::daemon::spawn_protocol {

// The most fds one message carries (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxFds = 253;
// The socket buffer corrald asks for; a request above what it gets is
// launched in corrald.
inline constexpr int kBuffer = 1 << 20;
// What the server says once it serves, and what corrald passes it as its
// last argument: "corral-spawn VERSION/PROTOCOL". Bump the protocol number
// with any change to the encoding.
#ifndef CORRAL_VERSION
#error "CORRAL_VERSION must be defined (CMakeLists.txt)"
#endif
inline constexpr const char* kGreeting = "corral-spawn " CORRAL_VERSION "/1";

// A request: the spawn, its user already resolved, the fds' targets (their
// sources go as SCM_RIGHTS, the cgroup's fd last) and corrald's resource
// limits as they are now.
std::vector<char> encode_request(const SpawnRequest& request, const std::optional<UserIds>& user,
                                 const std::vector<FdMapping>& fds, const rlimit& nofile_default);

// A reply: the pid (0 when the spawn failed) and the error.
bool decode_reply(const char* data, size_t size, pid_t& pid, std::string& error);

// Sends DATA with FDS attached; the send's result.
ssize_t send_with_fds(int socket, const void* data, size_t size, const int* fds, size_t count);

// Receives one message into BUFFER and the fds attached to it (close-on-exec);
// its size, 0 at the end, < 0 on an error. TRUNCATED: the message or its fds
// did not fit.
ssize_t receive_with_fds(int socket, char* buffer, size_t size, std::vector<UniqueFd>& fds,
                         bool& truncated);

// The server's loop: greets, then one request, one reply, until corrald
// (pid DAEMON, its parent) closes its end or dies. Keeps only stdio and
// SOCKET open.
[[noreturn]] void serve(int socket, pid_t daemon);

}  // namespace corral::daemon::spawn_protocol
