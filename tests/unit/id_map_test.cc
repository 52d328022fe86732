// IdMap: the flat id -> value table the dispatcher keeps its tasks in,
// checked against std::map through inserts and erases in the orders a task
// table sees (consecutive ids, a long-lived few among many short, strides)
// and across growing and shrinking.
#include "base/id_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace corral {
namespace {

// Every entry of MODEL is in MAP with its value, and nothing else is.
void expect_same(const IdMap<std::string>& map, const std::map<uint64_t, std::string>& model) {
  ASSERT_EQ(map.size(), model.size());
  for (const auto& [id, value] : model) {
    const std::string* found = map.find(id);
    ASSERT_NE(found, nullptr) << "id " << id;
    EXPECT_EQ(*found, value) << "id " << id;
  }
  size_t seen = 0;
  map.for_each([&](uint64_t id, const std::string& value) {
    ++seen;
    auto it = model.find(id);
    ASSERT_NE(it, model.end()) << "id " << id << " is in the map only";
    EXPECT_EQ(value, it->second);
  });
  EXPECT_EQ(seen, model.size());
}

TEST(IdMapTest, FindInsertEraseAndTakeTheValue) {
  IdMap<std::string> map;
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.find(1), nullptr);
  EXPECT_FALSE(map.contains(0));  // 0 is never an id
  map.insert(7, "seven");
  map.insert(8, "eight");
  ASSERT_NE(map.find(7), nullptr);
  EXPECT_EQ(*map.find(7), "seven");
  *map.find(8) = "EIGHT";
  std::string taken;
  EXPECT_TRUE(map.erase(8, &taken));
  EXPECT_EQ(taken, "EIGHT");
  EXPECT_FALSE(map.erase(8));
  EXPECT_FALSE(map.contains(8));
  EXPECT_EQ(map.size(), 1u);
}

TEST(IdMapTest, ATaskTableStreamKeepsEveryEntryAndShrinksAfterABurst) {
  IdMap<std::string> map;
  std::map<uint64_t, std::string> model;
  std::mt19937_64 random(42);
  uint64_t next = 1;
  // A window of in-flight ids sliding over 200,000 ids, with every 997th
  // kept for long (a slow task) and a random one of the window finishing
  // first now and then (out of order).
  for (int step = 0; step < 200000; ++step) {
    uint64_t id = next++;
    map.insert(id, std::to_string(id));
    model.emplace(id, std::to_string(id));
    if (model.size() > 300) {
      auto victim = model.upper_bound(id - 300);
      if (random() % 8 == 0) std::advance(victim, static_cast<long>(random() % 100));
      if (victim != model.end() && victim->first % 997 != 0) {
        std::string taken;
        ASSERT_TRUE(map.erase(victim->first, &taken));
        EXPECT_EQ(taken, victim->second);
        model.erase(victim);
      }
    }
    if (step % 20000 == 0) expect_same(map, model);
  }
  expect_same(map, model);
  const size_t grown = map.capacity();
  for (auto it = model.begin(); it != model.end();) {
    ASSERT_TRUE(map.erase(it->first));
    it = model.erase(it);
    if (model.size() % 1000 == 0) expect_same(map, model);
  }
  EXPECT_TRUE(map.empty());
  map.shrink_to_fit();
  EXPECT_LT(map.capacity(), grown / 8) << "the table keeps its memory after a burst";
}

TEST(IdMapTest, ATableShrinksOnlyOnceItStaysSmall) {
  IdMap<std::string> map;
  std::map<uint64_t, std::string> model;
  uint64_t next = 1;
  auto add = [&] {
    map.insert(next, std::to_string(next));
    model.emplace(next, std::to_string(next));
    ++next;
  };
  auto drop_oldest = [&] {
    ASSERT_TRUE(map.erase(model.begin()->first));
    model.erase(model.begin());
  };
  for (int i = 0; i < 10000; ++i) add();
  const size_t grown = map.capacity();
  // A swing down (a burst handed out) keeps the table.
  while (model.size() > 100) drop_oldest();
  EXPECT_EQ(map.capacity(), grown);
  // Staying small through many more erases gives the memory back, down to
  // a table at most eight times its size, and never below twice it.
  for (int i = 0; i < 200000; ++i) {
    add();
    drop_oldest();
  }
  EXPECT_LE(map.capacity(), 8 * model.size() * 2);
  EXPECT_GE(map.capacity(), 2 * model.size());
  expect_same(map, model);
  // Emptied, it keeps its table (the next burst would need it again) until
  // its owner says it is idle.
  const size_t before_idle = map.capacity();
  while (!model.empty()) drop_oldest();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.capacity(), before_idle);
  map.shrink_to_fit();
  EXPECT_EQ(map.capacity(), 16u);
  add();
  EXPECT_EQ(*map.find(next - 1), std::to_string(next - 1));
}

TEST(IdMapTest, IdsOfOneStrideAndRandomIdsStayFindable) {
  for (uint64_t stride : {uint64_t{1} << 10, uint64_t{1} << 20, uint64_t{4096 + 1}}) {
    IdMap<std::string> map;
    std::map<uint64_t, std::string> model;
    for (uint64_t i = 1; i <= 5000; ++i) {
      map.insert(i * stride, std::to_string(i));
      model.emplace(i * stride, std::to_string(i));
    }
    for (uint64_t i = 1; i <= 5000; i += 3) {
      ASSERT_TRUE(map.erase(i * stride));
      model.erase(i * stride);
    }
    expect_same(map, model);
  }
  IdMap<std::string> map;
  std::map<uint64_t, std::string> model;
  std::mt19937_64 random(7);
  for (int i = 0; i < 50000; ++i) {
    uint64_t id = random() | 1;
    if (model.contains(id)) continue;
    if (i % 3 == 2 && !model.empty()) {
      auto victim = model.lower_bound(random());
      if (victim == model.end()) victim = model.begin();
      ASSERT_TRUE(map.erase(victim->first));
      model.erase(victim);
      continue;
    }
    map.insert(id, std::to_string(id));
    model.emplace(id, std::to_string(id));
  }
  expect_same(map, model);
}

}  // namespace
}  // namespace corral
