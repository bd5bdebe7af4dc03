// SPDX-License-Identifier: MIT
// A plain-assert harness for the native tests: CHECK records a failure and goes on, Finish()
// prints "<name>: N passed, N failed" (native/test/run.sh sums these lines).
#ifndef VFIOBOX_NATIVE_TEST_CHECK_H_
#define VFIOBOX_NATIVE_TEST_CHECK_H_

#include <cstdio>

namespace vfiobox::test {

inline int g_passed = 0;
inline int g_failed = 0;

inline void Record(bool ok, const char* expr, const char* file, int line) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s:%d: %s\n", file, line, expr);
  }
}

inline int Finish(const char* name) {
  std::printf("%s: %d passed, %d failed\n", name, g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

}  // namespace vfiobox::test

#define CHECK(cond) ::vfiobox::test::Record(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ(a, b) ::vfiobox::test::Record((a) == (b), #a " == " #b, __FILE__, __LINE__)

#endif  // VFIOBOX_NATIVE_TEST_CHECK_H_
