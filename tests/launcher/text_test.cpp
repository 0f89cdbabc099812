#include "text.hpp"

#include <gtest/gtest.h>

namespace butter::launcher {
namespace {

TEST(Text, TerminalSafeEscapesWhatDrivesATerminal) {
    EXPECT_EQ(terminal_safe("plain \xc3\xa9t\xc3\xa9"), "plain \xc3\xa9t\xc3\xa9");
    EXPECT_EQ(terminal_safe("a\x1b[2Jb"), "a\\x1b[2Jb");
    EXPECT_EQ(terminal_safe("csi\xc2\x9b"
                            "31m"),
              "csi\\xc2\\x9b31m");  // U+009B
    EXPECT_EQ(terminal_safe("bidi\xe2\x80\xae"
                            "evil"),
              "bidi\\xe2\\x80\\xaeevil");                                 // U+202E
    EXPECT_EQ(terminal_safe("iso\xe2\x81\xa6x"), "iso\\xe2\\x81\\xa6x");  // U+2066
    EXPECT_EQ(terminal_safe("ls\xe2\x80\xa8x"), "ls\\xe2\\x80\\xa8x");    // U+2028
    EXPECT_EQ(terminal_safe("bad\xff"), "bad\\xff");
    EXPECT_EQ(terminal_safe("back\\slash"), "back\\\\slash");
}

TEST(Text, JsonStringEscapesControlsAndStaysUtf8) {
    EXPECT_EQ(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    EXPECT_EQ(json_string("\x1b"), "\"\\u001b\"");
    EXPECT_EQ(json_string("csi\xc2\x9bX"), "\"csi\\u009bX\"");
    EXPECT_EQ(json_string("bidi\xe2\x80\xae"
                          "evil"),
              "\"bidi\\u202eevil\"");
    EXPECT_EQ(json_string("\xe2\x80\x8f"), "\"\\u200f\"");
    EXPECT_EQ(json_string("\xc3\xa9"), "\"\xc3\xa9\"");
    EXPECT_EQ(json_string("bad\xff"), "\"bad\xef\xbf\xbd\"");
}

}  // namespace
}  // namespace butter::launcher
