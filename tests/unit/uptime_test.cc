// base/uptime.h: the uptime people read in `status` and in worker descriptions.
#include "base/uptime.h"

#include <gtest/gtest.h>

namespace corral {
namespace {

TEST(UptimeTest, HoursMinutesAndSecondsThenDays) {
  EXPECT_EQ(format_uptime(0), "0:00:00");
  EXPECT_EQ(format_uptime(59.9), "0:00:59");  // whole seconds, never rounded up
  EXPECT_EQ(format_uptime(3723), "1:02:03");
  EXPECT_EQ(format_uptime(86399), "23:59:59");
  EXPECT_EQ(format_uptime(86400), "1 day, 0:00:00");
  EXPECT_EQ(format_uptime(2 * 86400 + 3723), "2 days, 1:02:03");
}

TEST(UptimeTest, ATimeBeforeNowIsZero) {
  // A clock read twice may see the later time first.
  EXPECT_EQ(format_uptime(-0.5), "0:00:00");
}

}  // namespace
}  // namespace corral
