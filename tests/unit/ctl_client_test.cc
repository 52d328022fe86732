// corralctl's client: its check of the process that serves the socket,
// before it sends anything (root, the caller, or the owner of a directory
// nobody else may write in); its errors and exit codes; where the socket is;
// and the client against a one-connection fake corrald on a real socket in a
// temp dir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ctl/client.h"
#include "ctl/commands.h"
#include "ctl/config_socket.h"
#include "ctl/run.h"
#include "protocol/control.h"
#include "tests/support/fake_control_socket.h"
#include "tests/support/file_io.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/ctl_plan.h"

namespace corral::ctl {
namespace {

using protocol::kExitFailed;
using protocol::kExitUnreachable;
using ::testing::HasSubstr;

TEST(CtlClientTest, RootTheCallerAndTheOwnerOfAPrivateDirectoryAreTrusted) {
  SocketDirectory run{"/run/corral", 990, 0755};
  EXPECT_TRUE(trust_peer(0, 1000, run).ok());
  EXPECT_TRUE(trust_peer(1000, 1000, run).ok());
  EXPECT_TRUE(trust_peer(990, 0, run).ok());  // corrald run as its own user
  EXPECT_TRUE(trust_peer(0, 1000, std::nullopt).ok());
}

TEST(CtlClientTest, AnyoneElseIsRefusedWithTheReason) {
  EXPECT_EQ(message_of(trust_peer(65534, 0, SocketDirectory{"/run/corral", 0, 0755})),
            "the process serving it runs as uid 65534, which is neither root nor you (uid 0) nor "
            "uid 0, the owner of /run/corral: corralctl sent it nothing");
  // Others may write in the directory: its owner does not vouch for what is in it.
  for (mode_t mode : {0777, 01777, 0775}) {
    EXPECT_EQ(message_of(trust_peer(65534, 0, SocketDirectory{"/tmp/x", 65534, mode})),
              "the process serving it runs as uid 65534, which is neither root nor you (uid 0); "
              "the owner of /tmp/x does not count, since others may write in it: corralctl sent "
              "it nothing")
        << std::oct << mode;
  }
  EXPECT_THAT(message_of(trust_peer(65534, 0, std::nullopt)),
              HasSubstr("the socket's directory cannot be read"));
}

// ---- client errors ----

TEST(CtlClientErrorTest, UnreachableExitsThree) {
  Plan plan = text_plan("status", {});
  auto error = ClientError::unreachable("/run/corral/corral.sock", ENOENT);
  EXPECT_EQ(error.message(),
            "cannot reach corrald at /run/corral/corral.sock: No such file or directory");
  Output output = format_client_error(plan, error, Format::kText);
  EXPECT_EQ(output.out, "");
  EXPECT_EQ(output.err,
            "corralctl: cannot reach corrald at /run/corral/corral.sock: No such file or "
            "directory\n"
            "corralctl: is corrald running? Name its socket with -s PATH, or its config with -c "
            "FILE (daemon.socket)\n");
  EXPECT_EQ(output.exit_code, kExitUnreachable);
}

TEST(CtlClientErrorTest, ProtocolErrorExitsOne) {
  Plan plan = text_plan("stop", {"all"});
  Output output = format_client_error(plan, ClientError::protocol("corrald closed the connection"),
                                      Format::kJson);
  EXPECT_EQ(output.err, "corralctl: corrald closed the connection\n");
  EXPECT_EQ(output.exit_code, kExitFailed);
}

TEST(CtlClientErrorTest, VersionStillPrintsCorralctls) {
  Plan plan = text_plan("version", {});
  auto error = ClientError::unreachable("/x.sock", ECONNREFUSED);
  Output output = format_client_error(plan, error, Format::kText);
  EXPECT_EQ(output.out, std::string("corralctl ") + protocol::kVersion + "\n");
  EXPECT_EQ(output.exit_code, kExitUnreachable);
  Output json = format_client_error(plan, error, Format::kJson);
  EXPECT_EQ(Json::parse(json.out), Json({{"corralctl", protocol::kVersion}, {"corrald", nullptr}}));
}

// ---- where the socket is ----

TEST(CtlSocketTest, FlagThenEnvironmentThenDefault) {
  EXPECT_EQ(resolve_socket("/a.sock", "/b.sock", std::nullopt).path, "/a.sock");
  EXPECT_EQ(resolve_socket(std::nullopt, "/b.sock", std::nullopt).path, "/b.sock");
  EXPECT_EQ(resolve_socket(std::nullopt, "", std::nullopt).path, "/run/corral/corral.sock");
  EXPECT_EQ(resolve_socket(std::nullopt, nullptr, std::nullopt).path, "/run/corral/corral.sock");
}

TEST(CtlSocketTest, EnvironmentBeatsTheConfigWhichIsThenNotRead) {
  SocketChoice choice = resolve_socket(std::nullopt, "/b.sock", "/nonexistent/corral.yaml");
  EXPECT_EQ(choice.path, "/b.sock");
  EXPECT_TRUE(choice.errors.empty());
}

TEST(CtlSocketTest, TheConfigGivesDaemonSocket) {
  corral::testing::TempDir dir("corralctl-test");
  std::string file = dir.file("corral.yaml");
  corral::testing::write_file(file, "daemon:\n  socket: /tmp/elsewhere.sock\n");
  SocketChoice choice = resolve_socket(std::nullopt, nullptr, file);
  EXPECT_TRUE(choice.errors.empty()) << choice.errors.front();
  EXPECT_EQ(choice.path, "/tmp/elsewhere.sock");
}

TEST(CtlSocketTest, AMissingConfigIsReported) {
  SocketChoice choice = resolve_socket(std::nullopt, nullptr, "/nonexistent/corral.yaml");
  EXPECT_FALSE(choice.errors.empty());
}

TEST(CtlSocketTest, WithoutAConfigTheFlagThenTheEnvironmentThenTheDefault) {
  EXPECT_EQ(socket_without_config("/a.sock", "/b.sock").path, "/a.sock");
  EXPECT_EQ(socket_without_config(std::nullopt, "/b.sock").path, "/b.sock");
  EXPECT_EQ(socket_without_config(std::nullopt, "").path, "/run/corral/corral.sock");
  EXPECT_EQ(socket_without_config(std::nullopt, nullptr).path, "/run/corral/corral.sock");
  EXPECT_EQ(named_socket(std::nullopt, ""), std::nullopt);
  EXPECT_EQ(named_socket(std::nullopt, "/b.sock"), "/b.sock");
}

// ---- which lines corralctl hands to corralctl-full ----

// corralctl's decision for ARGS (its words after the program's name) with
// CORRAL_SOCKET set to ENV (null: unset).
bool hands_over(const std::vector<std::string>& args, const char* env = nullptr) {
  GlobalArgs line = split_global_args(args);
  EXPECT_FALSE(line.answer) << "corralctl answers " << line.answer->out << line.answer->err;
  Plan plan = line.words.empty() ? Plan{} : plan_line(line);
  return needs_full(line, plan, env);
}

TEST(CtlHandOverTest, TheShellImportAndAConfigsSocketGoToCorralctlFull) {
  EXPECT_TRUE(hands_over({}));                 // the shell
  EXPECT_TRUE(hands_over({"-s", "/a.sock"}));  // the shell, on that socket
  EXPECT_TRUE(hands_over({"import", "supervisord", "/etc/supervisord.conf"}));
  EXPECT_TRUE(hands_over({"-c", "/etc/corral/corral.yaml", "status"}));
  EXPECT_TRUE(hands_over({"-c", "/etc/corral/corral.yaml", "submit", "job", "-", "--wait"}));
}

TEST(CtlHandOverTest, ASocketTheConfigDoesNotDecideStaysHere) {
  EXPECT_FALSE(hands_over({"status"}));
  EXPECT_FALSE(hands_over({"-s", "/a.sock", "--json", "status", "web"}));
  EXPECT_FALSE(hands_over({"submit", "job", "-", "--wait"}));
  // CORRAL_SOCKET comes before -c, whose config is then not read.
  EXPECT_FALSE(hands_over({"-c", "/etc/corral/corral.yaml", "status"}, "/b.sock"));
  // What corrald is not asked for needs no socket: help, usage errors.
  EXPECT_FALSE(hands_over({"-c", "/etc/corral/corral.yaml", "help"}));
  EXPECT_FALSE(hands_over({"-c", "/etc/corral/corral.yaml", "status", "--nosuch"}));
  EXPECT_FALSE(hands_over({"import", "--help"}));
}

// ---- the client, against a one-connection fake corrald on a real socket ----

using corral::testing::FakeControlSocket;
using corral::testing::read_line;
using corral::testing::send_all;

TEST(CtlClientTest, CallSendsOneLineAndReadsOneReply) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) {
    Json request = Json::parse(read_line(fd));
    send_all(fd, protocol::encode_line({{"ok", true}, {"echo", request}}));
  });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client) << client.error().message();
  auto reply = client->call({{"cmd", "status"}, {"targets", {"web:0"}}});
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ((*reply)["echo"], Json({{"cmd", "status"}, {"targets", {"web:0"}}}));
}

// An older corrald does not take a status's "fields": the request goes
// again without them, on the same connection, and its whole reply is used.
TEST(CtlClientTest, FieldsAnOlderDaemonRefusesAreDroppedAndTheRequestSentAgain) {
  FakeControlSocket daemon;
  std::vector<Json> requests;
  daemon.serve([&requests](int fd) {
    for (int i = 0; i < 2; ++i) {
      Json request = Json::parse(read_line(fd));
      requests.push_back(request);
      if (request.contains("fields")) {
        send_all(
            fd,
            protocol::encode_line(
                {{"ok", false},
                 {"error", R"(unknown field "fields" in a status request (it takes targets))"}}));
      } else {
        send_all(fd, protocol::encode_line({{"ok", true}, {"workers", Json::array()}}));
      }
    }
  });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  auto reply = client->call({{"cmd", "status"}, {"fields", {"name"}}});
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(*reply, Json({{"ok", true}, {"workers", Json::array()}}));
  daemon.join();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1], Json({{"cmd", "status"}}));
}

TEST(CtlClientTest, ReadLineStreamsLinesWhateverTheChunks) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) {
    send_all(fd, "{\"a\":1}\n{\"b\"");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    send_all(fd, ":2}\n{\"end\":true}\n");
  });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->read_line().value(), "{\"a\":1}");
  EXPECT_EQ(client->read_message().value(), Json({{"b", 2}}));
  EXPECT_EQ(client->read_message().value(), Json({{"end", true}}));
  auto eof = client->read_line();
  ASSERT_FALSE(eof);
  EXPECT_EQ(eof.error().message(), "corrald closed the connection");
}

TEST(CtlClientTest, ClosedWithoutAReplyIsAProtocolError) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) { read_line(fd); });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  auto reply = client->call({{"cmd", "version"}});
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().kind(), ClientError::Kind::kProtocol);
  EXPECT_EQ(reply.error().exit_code(), kExitFailed);
  EXPECT_EQ(reply.error().message(), "corrald closed the connection");
}

TEST(CtlClientTest, ARefusedPeerIsUnreachableEvenIfClosedBeforeTheRequest) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) {
    send_all(fd, protocol::encode_line(
                     {{"ok", false}, {"error", "uid 1000 may not connect"}, {"refused", true}}));
  });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let corrald hang up first
  auto reply = client->call({{"cmd", "status"}});
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().kind(), ClientError::Kind::kUnreachable);
  EXPECT_EQ(reply.error().message(),
            "cannot reach corrald at " + daemon.path() + ": uid 1000 may not connect");
}

TEST(CtlClientTest, AnErrorLineLeftBeforeAHangUpIsStillTheReply) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) { send_all(fd, protocol::encode_line(protocol::error_reply("busy"))); });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto reply = client->call({{"cmd", "status"}});
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(*reply, protocol::error_reply("busy"));
}

TEST(CtlClientTest, HalfALineThenCloseIsAProtocolError) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) { send_all(fd, "{\"ok\":"); });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  auto line = client->read_line();
  ASSERT_FALSE(line);
  EXPECT_EQ(line.error().message(), "corrald closed the connection in the middle of a line");
}

TEST(CtlClientTest, BadJsonAndNonObjectsAreProtocolErrors) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) { send_all(fd, "{nope\n[1,2]\n"); });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  auto bad = client->read_message();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind(), ClientError::Kind::kProtocol);
  EXPECT_EQ(bad.error().message(), "malformed reply from corrald: bad JSON");
  auto array = client->read_message();
  ASSERT_FALSE(array);
  EXPECT_EQ(array.error().message(), "malformed reply from corrald: not a JSON object");
}

TEST(CtlClientTest, AReplyLineOverTheLimitIsRefused) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) { send_all(fd, std::string(protocol::kMaxLineBytes + 10, 'x') + "\n"); });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  auto line = client->read_line();
  ASSERT_FALSE(line);
  EXPECT_EQ(line.error().kind(), ClientError::Kind::kProtocol);
  EXPECT_NE(line.error().message().find("longer than"), std::string::npos);
  EXPECT_FALSE(client->read_line());  // the connection is given up
}

TEST(CtlClientTest, ALineOfExactlyTheLimitIsAccepted) {
  FakeControlSocket daemon;
  daemon.serve([](int fd) { send_all(fd, std::string(protocol::kMaxLineBytes, 'x') + "\n"); });
  auto client = Client::connect(daemon.path());
  ASSERT_TRUE(client);
  auto line = client->read_line();
  ASSERT_TRUE(line) << line.error().message();
  EXPECT_EQ(line->size(), protocol::kMaxLineBytes);
}

TEST(CtlClientTest, NobodyListeningIsUnreachable) {
  FakeControlSocket daemon;
  daemon.stop_listening();
  auto client = Client::connect(daemon.path());
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind(), ClientError::Kind::kUnreachable);
  EXPECT_EQ(client.error().message(),
            "cannot reach corrald at " + daemon.path() + ": Connection refused");
}

TEST(CtlClientTest, ConnectingToNothingIsUnreachable) {
  auto client = Client::connect("/nonexistent/dir/corral.sock");
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind(), ClientError::Kind::kUnreachable);
  EXPECT_EQ(client.error().exit_code(), kExitUnreachable);
  EXPECT_EQ(client.error().message(),
            "cannot reach corrald at /nonexistent/dir/corral.sock: No such file or directory");
}

TEST(CtlClientTest, APathTooLongForSunPathIsUnreachable) {
  auto client = Client::connect("/" + std::string(200, 'x'));
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind(), ClientError::Kind::kUnreachable);
}

}  // namespace
}  // namespace corral::ctl
