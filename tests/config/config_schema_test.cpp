// The schema machinery on a schema of the test's own (placeholder; filled in below).
#include <gtest/gtest.h>

#include "weft/config/schema.hpp"

TEST(ConfigSchema, Placeholder) {
    weft::config::Schema<int> s;
    EXPECT_TRUE(s.keys().empty());
}
