// For the tests that read records out of rings: parses(), ipc's
// parse_frame_body() as a gtest assertion, so that a record that is not a
// frame fails the test with the parser's message; has_record(), whether a
// peek or take found a record.
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

// Whether RECORD, what a ring's peek() or take() returned, is a record: they
// return a view without data when there is none.
inline bool has_record(std::string_view record) { return record.data() != nullptr; }

}  // namespace corral::ipc
