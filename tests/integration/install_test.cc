// What `cmake --install` and the .deb put on a machine: every path of the
// service layout, a unit that systemd-analyze accepts, and an SDK that a
// worker project finds with find_package(corral).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/integration/harness.h"

namespace corral::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Every path the layout holds, relative to the root.
const std::vector<std::string> kLayout = {
    "usr/bin/corrald",
    "usr/bin/corralctl",
    "usr/bin/corral-worker",
    "usr/libexec/corral/corral-spawn",
    "usr/libexec/corral/corralctl-full",
    "usr/include/corral/worker.h",
    "usr/" CORRAL_INSTALL_LIBDIR "/libcorral_worker_sdk.a",
    "usr/" CORRAL_INSTALL_LIBDIR "/libcorral_ipc.a",
    "usr/" CORRAL_INSTALL_LIBDIR "/cmake/corral/corralConfig.cmake",
    "usr/" CORRAL_INSTALL_LIBDIR "/cmake/corral/corralTargets.cmake",
    "usr/" CORRAL_INSTALL_LIBDIR "/pkgconfig/corral-worker.pc",
    "usr/lib/systemd/system/corrald.service",
    "etc/corral/corral.yaml",
    "etc/corral/jobs.d/example-job.yaml.sample",
    "usr/share/bash-completion/completions/corralctl",
    "usr/share/man/man8/corrald.8",
    "usr/share/man/man1/corralctl.1",
    "usr/share/man/man5/corral.yaml.5",
    "usr/share/doc/corral/configuration.md",
    // Where Debian's python3 looks (its sys.path holds /usr/lib/python3/dist-packages).
    "usr/lib/python3/dist-packages/corral_worker.py",
    "usr/lib/python3/dist-packages/corral/__init__.py",
    "usr/lib/python3/dist-packages/corral/client.py",
    "usr/lib/python3/dist-packages/corral/executor.py",
    "usr/lib/python3/dist-packages/corral/aio.py",
    "usr/lib/python3/dist-packages/corral/worker.py",
    "usr/share/doc/corral/examples/demo.yaml",
    "usr/share/doc/corral/examples/python_worker.py",
    "usr/share/doc/corral/examples/python/pool_map.py",
};

TEST(InstallTest, TheTreeHoldsTheLayoutAndTheUnitVerifies) {
  TempDir dir;
  const std::string root = dir.file("root");
  RunResult install =
      run({"/bin/sh", "-c", "DESTDIR=" + root + " cmake --install " + CORRAL_BUILD_DIR}, 120s);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  for (const auto& path : kLayout) EXPECT_TRUE(path_resolves(root + "/" + path)) << path;

  // The installed config is valid as shipped.
  RunResult check =
      run({root + "/usr/bin/corrald", "--check", "-c", root + "/etc/corral/corral.yaml"});
  EXPECT_EQ(check.exit_code, 0) << check.err;

  // The installed example finds the installed SDK, here by PYTHONPATH (on a
  // machine, dist-packages is on python3's path): a task of no words fails
  // with the example's own reason.
  RunResult example =
      run({"/bin/sh", "-c",
           "cd / && printf '   \\n' | PYTHONPATH=" + root +
               "/usr/lib/python3/dist-packages CORRAL_JOB=w " +
               "CORRAL_WORKER=0 CORRAL_CHANNEL=pipe CORRAL_FDS=0,1 CORRAL_FRAMING=lines " +
               "/usr/bin/python3 " + root + "/usr/share/doc/corral/examples/python_worker.py"});
  EXPECT_THAT(example.out + example.err, HasSubstr("no words")) << example.out << example.err;

  // The installed package imports, and speaks: no corrald at this socket is
  // its clear error.
  RunResult package =
      run({"/bin/sh", "-c",
           "cd / && PYTHONPATH=" + root + "/usr/lib/python3/dist-packages /usr/bin/python3 -c '" +
               "import corral\ntry:\n  corral.Client(\"" + dir.file("none.sock") +
               "\").status()\nexcept corral.ConnectionFailed as e:\n  print(e)'"});
  EXPECT_THAT(package.out, HasSubstr("cannot reach corrald at")) << package.out << package.err;

  // systemd-analyze verify on the installed unit, its binary and man pages
  // taken from the tree.
  std::string unit = read_file(root + "/usr/lib/systemd/system/corrald.service");
  EXPECT_THAT(unit, HasSubstr("Type=notify"));
  std::string here = unit;
  here.replace(here.find("/usr/bin/corrald"), 16, root + "/usr/bin/corrald");
  write_file(dir.file("corrald.service"), here);
  RunResult verify = run(
      {"/bin/sh", "-c",
       "MANPATH=" + root + "/usr/share/man systemd-analyze verify " + dir.file("corrald.service")});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // A worker project builds against the SDK with find_package(corral), with
  // the compiler the SDK was built with (a sanitized SDK needs its runtime).
  const std::string project = dir.file("project");
  ::mkdir(project.c_str(), 0755);
  write_file(project + "/CMakeLists.txt",
             "cmake_minimum_required(VERSION 3.20)\nproject(echo_worker CXX)\n"
             "set(CMAKE_CXX_STANDARD 20)\nfind_package(corral REQUIRED)\n"
             "add_executable(echo_worker main.cc)\n"
             "target_link_libraries(echo_worker PRIVATE corral::worker)\n");
  write_file(project + "/main.cc",
             "#include <corral/worker.h>\n#include <string>\n"
             "int main() {\n  return corral::serve([](std::string_view task) {\n"
             "    return corral::Result::success(std::string(task));\n  });\n}\n");
  RunResult build =
      run({"/bin/sh", "-c",
           "cmake -S " + project + " -B " + project + "/build -DCMAKE_PREFIX_PATH=" + root +
               "/usr -DCMAKE_CXX_COMPILER=" CORRAL_CXX_COMPILER " >/dev/null && cmake --build " +
               project + "/build"},
          300s);
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
  // Run without a corrald it says what is missing and exits 2.
  RunResult alone = run({project + "/build/echo_worker"});
  EXPECT_EQ(alone.exit_code, 2) << alone.err;
  EXPECT_THAT(alone.err, HasSubstr("CORRAL_"));
}

TEST(InstallTest, TheDebHoldsTheLayoutAndItsConffiles) {
  TempDir dir;
  RunResult pack = run({"/bin/sh", "-c",
                        "cd " + dir.path() + " && cpack -G DEB --config " +
                            std::string(CORRAL_BUILD_DIR) + "/CPackConfig.cmake"},
                       300s);
  ASSERT_EQ(pack.exit_code, 0) << pack.out << pack.err;
  RunResult contents = run({"/bin/sh", "-c", "dpkg-deb -c " + dir.path() + "/corral_*.deb"});
  ASSERT_EQ(contents.exit_code, 0) << contents.err;
  for (const auto& path : kLayout) EXPECT_THAT(contents.out, HasSubstr("./" + path)) << path;
  RunResult info = run({"/bin/sh", "-c", "dpkg-deb -I " + dir.path() + "/corral_*.deb"});
  EXPECT_THAT(info.out, HasSubstr("Package: corral"));
  // dpkg-shlibdeps ran; where corrald and corralctl link their libraries in,
  // glibc aside (CORRAL_DAEMON_STATIC, CORRAL_CTL_STATIC; not in a sanitized
  // build), none of theirs is a dependency.
  EXPECT_THAT(info.out, HasSubstr("Depends: libc6 (>= "));
  for (const char* library : {"libyaml-cpp", "libsqlite3", "libhiredis", "libspdlog", "libfmt"}) {
    if (CORRAL_DAEMON_LINKED_STATICALLY) {
      EXPECT_THAT(info.out, Not(HasSubstr(library))) << library;
    } else {
      EXPECT_THAT(info.out, HasSubstr(library)) << library;
    }
  }
  RunResult conffiles =
      run({"/bin/sh", "-c", "dpkg-deb -I " + dir.path() + "/corral_*.deb conffiles"});
  EXPECT_THAT(conffiles.out, HasSubstr("/etc/corral/corral.yaml"));
}

}  // namespace
}  // namespace corral::testing
