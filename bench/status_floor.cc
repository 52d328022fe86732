// The floor of `corralctl status` as a whole command (bench/status_roundtrip.py):
// connect to corrald's socket, send the request (REQUEST, or {"cmd":"status"}),
// read the reply line and write it out as it came. No options, no JSON
// parsed, no table formatted; linked as corralctl is (C++ runtime static,
// glibc shared), so that what corralctl costs above it is corralctl's own.
//   status_floor SOCKET [REQUEST]
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) return 2;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(argv[1]) >= sizeof addr.sun_path) return 2;
  std::strcpy(addr.sun_path, argv[1]);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) return 3;
  const std::string request = std::string(argc == 3 ? argv[2] : "{\"cmd\":\"status\"}") + "\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) return 3;
  std::string reply;
  char chunk[64 * 1024];
  while (reply.empty() || reply.back() != '\n') {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return 3;
    reply.append(chunk, static_cast<size_t>(n));
  }
  return ::write(STDOUT_FILENO, reply.data(), reply.size()) == ssize_t(reply.size()) ? 0 : 1;
}
