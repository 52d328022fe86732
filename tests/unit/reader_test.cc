// Tests of config/reader.h on YAML trees built here: the typed readers and
// a Section's key whitelist, without the loader around them (what the
// loader makes of a whole file is in parse_test.cc).
#include "config/reader.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>

namespace corral::config {
namespace {

class ReaderTest : public ::testing::Test {
 protected:
  // The value of KEY in the one-line map TEXT, as an item of job "j".
  Item item(const std::string& text, const std::string& key) {
    root_ = YAML::Load(text);
    YAML::Node value = root_[key];
    return Item{Scope{"j", "queue"}, key, value.Mark(), value};
  }
  std::string all_errors() const {
    std::string out;
    for (const Diagnostic& d : errors_) out += d.str() + "\n";
    return out;
  }

  std::vector<Diagnostic> errors_;
  Reader reader_{"f.yaml", errors_};
  YAML::Node root_;
};

TEST_F(ReaderTest, ACountOutOfRangeNamesTheRangeAndThePlace) {
  EXPECT_EQ(reader_.count(item("n: 7", "n"), 1, 10), 7u);
  EXPECT_TRUE(errors_.empty());
  EXPECT_FALSE(reader_.count(item("n: 11", "n"), 1, 10));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_EQ(errors_[0].str(),
            "f.yaml:1:4: queue.n of job \"j\": expected an integer from 1 to 10, got \"11\"");
}

TEST_F(ReaderTest, ADurationSaysWhyItIsRefused) {
  EXPECT_EQ(reader_.duration(item("t: 1.5s", "t"), Duration(0)), std::chrono::milliseconds(1500));
  EXPECT_FALSE(reader_.duration(item("t: off", "t"), Duration(0)));
  EXPECT_FALSE(reader_.duration(item("t: 5min", "t"), Duration(0)));
  EXPECT_FALSE(reader_.duration(item("t: 0s", "t"), Duration(1)));
  ASSERT_EQ(errors_.size(), 3u) << all_errors();
  EXPECT_EQ(errors_[0].message,
            "queue.t of job \"j\": expected a duration like 250ms or 30s, got "
            "\"off\" (this one cannot be turned off)");
  EXPECT_EQ(errors_[1].message,
            "queue.t of job \"j\": expected a duration like 250ms or 30s, got "
            "\"5min\" (unknown unit \"min\"; write m)");
  EXPECT_EQ(errors_[2].message,
            "queue.t of job \"j\": expected a duration > 0 like 250ms or 30s, got \"0s\"");
}

TEST_F(ReaderTest, AChoiceSuggestsTheNearestName) {
  EXPECT_EQ(reader_.choice(item("c: shm", "c"), names::kChannels), Channel::kShm);
  EXPECT_FALSE(reader_.choice(item("c: SHM", "c"), names::kChannels));
  EXPECT_FALSE(reader_.choice(item("c: carrier-pigeon", "c"), names::kChannels));
  ASSERT_EQ(errors_.size(), 2u) << all_errors();
  EXPECT_EQ(errors_[0].message,
            "queue.c of job \"j\": expected one of none, pipe or shm, got "
            "\"SHM\"; did you mean \"shm\"?");
  EXPECT_EQ(errors_[1].message,
            "queue.c of job \"j\": expected one of none, pipe or shm, got \"carrier-pigeon\"");
}

TEST_F(ReaderTest, ASectionReportsTheKeysNoGetterAskedFor) {
  YAML::Node map = YAML::Load("{capacity: 5, prefech: 2, colour: red}");
  Section s(reader_, Item{Scope{"j", ""}, "queue", YAML::Mark(), map}, Scope{"j", "queue"});
  uint64_t capacity = 0;
  uint32_t prefetch = 0;
  EXPECT_TRUE(s.get_count("capacity", capacity, 1));
  EXPECT_FALSE(s.get_count("prefetch", prefetch, 1));
  s.finish();
  EXPECT_EQ(capacity, 5u);
  ASSERT_EQ(errors_.size(), 2u) << all_errors();
  EXPECT_EQ(errors_[0].message,
            "unknown key \"prefech\" in queue of job \"j\"; did you mean \"prefetch\"?");
  EXPECT_EQ(errors_[1].message,
            "unknown key \"colour\" in queue of job \"j\"; valid keys: capacity, prefetch");
}

TEST_F(ReaderTest, ASectionThatIsNotAMapIsReportedOnce) {
  YAML::Node scalar = YAML::Load("command:x");
  Section s(reader_, Item{Scope{}, "jobs", YAML::Mark(), scalar}, Scope{"", "jobs"});
  EXPECT_FALSE(s.valid());
  std::string unused;
  EXPECT_FALSE(s.get_string("anything", unused, true));
  s.finish();
  ASSERT_EQ(errors_.size(), 1u) << all_errors();
  EXPECT_EQ(errors_[0].message,
            "jobs: expected a map, got \"command:x\" (a key needs a space "
            "after its colon, like \"key: value\")");
}

}  // namespace
}  // namespace corral::config
