// parses(), for the tests that read records out of rings: ipc's
// parse_frame_body() as a gtest assertion, so that a record that is not a
// frame fails the test with the parser's message.
#pragma once

#include <string_view>

#include "base/result.h"
#include "gtest/gtest.h"
#include "ipc/frame.h"

namespace corral::ipc {

// BODY parsed into FRAME (left as it was when BODY is not a frame).
inline ::testing::AssertionResult parses(std::string_view body, Frame& frame) {
  Result<Frame> parsed = parse_frame_body(body);
  if (!parsed) return ::testing::AssertionFailure() << parsed.error().message();
  frame = *parsed;
  return ::testing::AssertionSuccess();
}

}  // namespace corral::ipc
