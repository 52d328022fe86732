// The client budget: how many client connections corrald holds at once,
// derived from RLIMIT_NOFILE, and how a spent budget takes a place back from
// a connection that may give it up (/metrics). The fd reserve: a spare is
// given up for one queued connection and taken back when it is done.
#include "daemon/fd_reserve.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace corral::daemon {
namespace {

// A non-blocking listening socket in the abstract namespace, and a client
// connected to it when CONNECT.
struct Listener {
  explicit Listener(bool connect) {
    listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    static int count = 0;
    std::snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "corral-fd-reserve-%d-%d", getpid(),
                  ++count);
    const auto size = static_cast<socklen_t>(sizeof(sa_family_t) + 1 + strlen(addr.sun_path + 1));
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), size), 0);
    EXPECT_EQ(::listen(listener.get(), 4), 0);
    if (!connect) return;
    client.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), size), 0);
  }
  UniqueFd listener;
  UniqueFd client;
};

TEST(FdReserveTest, ASpareTakesAQueuedConnectionAndComesBack) {
  Listener queued(true);
  FdReserve reserve(2);
  ASSERT_EQ(reserve.available(), 2u);
  UniqueFd connection = reserve.accept_with_spare(queued.listener.get());
  ASSERT_TRUE(connection);
  EXPECT_EQ(reserve.available(), 1u);
  connection.reset();
  reserve.refill();
  EXPECT_EQ(reserve.available(), 2u);
}

TEST(FdReserveTest, AFailedAcceptKeepsTheSpare) {
  Listener empty(false);
  FdReserve reserve(1);
  EXPECT_FALSE(reserve.accept_with_spare(empty.listener.get()));  // EAGAIN: nothing queued
  EXPECT_EQ(reserve.available(), 1u);
}

TEST(FdReserveTest, WithoutASpareTheConnectionStaysQueued) {
  Listener queued(true);
  FdReserve none(0);
  EXPECT_FALSE(none.accept_with_spare(queued.listener.get()));
  FdReserve one(1);
  EXPECT_TRUE(one.accept_with_spare(queued.listener.get()));  // it was still there
}

TEST(ClientBudgetTest, IsAQuarterOfTheFdLimitUpToACap) {
  uint64_t nofile = 256;
  ClientBudget budget([&] { return nofile; });
  EXPECT_EQ(budget.limit(), 64u);
  nofile = 64;  // read at each connection: `prlimit --pid` counts at once
  EXPECT_EQ(budget.limit(), 16u);
  nofile = 1 << 20;
  EXPECT_EQ(budget.limit(), ClientBudget::kMaxClients);
}

TEST(ClientBudgetTest, PlacesRunOutAndComeBackWhenTheirHoldersEnd) {
  ClientBudget budget([] { return uint64_t{16}; });
  std::vector<Tally::Place> places;
  for (int i = 0; i < 4; ++i) {
    places.push_back(budget.take());
    EXPECT_TRUE(places.back());
  }
  EXPECT_EQ(budget.in_use(), 4u);
  EXPECT_FALSE(budget.take());
  EXPECT_EQ(budget.in_use(), 4u);
  places.pop_back();
  EXPECT_EQ(budget.in_use(), 3u);
  Tally::Place again = budget.take();
  EXPECT_TRUE(again);
  // Moved, a place is still one place.
  Tally::Place moved = std::move(again);
  EXPECT_FALSE(again);  // NOLINT(bugprone-use-after-move): a moved-from place holds none
  EXPECT_EQ(budget.in_use(), 4u);
}

TEST(ClientBudgetTest, ASpentBudgetTakesThePlaceTheReclaimerGivesUp) {
  ClientBudget budget([] { return uint64_t{8}; });
  std::vector<Tally::Place> scrapers;
  scrapers.push_back(budget.take());
  scrapers.push_back(budget.take());
  int reclaimed = 0;
  budget.set_reclaimer([&]() -> Tally::Place {
    if (scrapers.empty()) return {};
    ++reclaimed;
    Tally::Place place = std::move(scrapers.front());
    scrapers.erase(scrapers.begin());
    return place;
  });
  Tally::Place control = budget.take();
  EXPECT_TRUE(control);
  EXPECT_EQ(reclaimed, 1);
  EXPECT_EQ(budget.in_use(), 2u);
  Tally::Place another = budget.take();
  EXPECT_TRUE(another);
  EXPECT_FALSE(budget.take());  // nothing left to give up
  EXPECT_EQ(reclaimed, 2);
  EXPECT_EQ(budget.in_use(), 2u);
}

TEST(ClientBudgetTest, APlaceMayOutliveItsBudget) {
  auto budget = std::make_unique<ClientBudget>([] { return uint64_t{8}; });
  Tally::Place place = budget->take();
  budget.reset();
  place = Tally::Place();  // gives back to a count nobody reads: no fault
  EXPECT_FALSE(place);
}

}  // namespace
}  // namespace corral::daemon
