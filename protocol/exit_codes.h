// The exit codes of corrald (corrald(8)) and corralctl (corralctl(1)), which
// scripts and service managers read. The two programs share the first three
// meanings; only corralctl can fail to reach the other end. Header-only.
#pragma once

namespace corral::protocol {

inline constexpr int kExitOk = 0;           // corrald: a clean stop; corralctl: done
inline constexpr int kExitFailed = 1;       // corrald: a fatal error; corralctl: the command failed
inline constexpr int kExitUsage = 2;        // a usage error; for corrald also a bad config
inline constexpr int kExitUnreachable = 3;  // corralctl: cannot reach corrald

}  // namespace corral::protocol
