// The Value tree codec, and the embedded default's pre-parsed tree against its text.
#include <gtest/gtest.h>

#include "profile/loader.hpp"
#include "profile/toml_reader.hpp"
#include "profile/tree_codec.hpp"

namespace butter::launcher::profile {
namespace {

// Equal trees: kinds, payloads, positions, key order.
::testing::AssertionResult same(const Value& a, const Value& b, const std::string& at = "/") {
    auto loc = [](const SourceLoc& l) { return render_loc(l); };
    if (a.kind != b.kind) return ::testing::AssertionFailure() << at << ": kind differs";
    if (loc(a.loc) != loc(b.loc) || loc(a.key_loc) != loc(b.key_loc))
        return ::testing::AssertionFailure()
               << at << ": position " << loc(a.loc) << " / " << loc(b.loc) << ", key "
               << loc(a.key_loc) << " / " << loc(b.key_loc);
    if (a.string != b.string || a.integer != b.integer || a.boolean != b.boolean ||
        !(a.floating == b.floating || (a.floating != a.floating && b.floating != b.floating)))
        return ::testing::AssertionFailure() << at << ": value differs";
    if (a.array.size() != b.array.size() || a.table.size() != b.table.size())
        return ::testing::AssertionFailure() << at << ": size differs";
    for (std::size_t i = 0; i < a.array.size(); ++i)
        if (auto r = same(a.array[i], b.array[i], at + std::to_string(i) + "/"); !r) return r;
    for (std::size_t i = 0; i < a.table.size(); ++i) {
        if (a.table[i].first != b.table[i].first)
            return ::testing::AssertionFailure() << at << ": key " << a.table[i].first;
        if (auto r = same(a.table[i].second, b.table[i].second, at + a.table[i].first + "/"); !r)
            return r;
    }
    return ::testing::AssertionSuccess();
}

constexpr std::string_view kEveryKind = R"(
title = "a \"quoted\" string with \u00e9"
negative = -9223372036854775808
big = 9223372036854775807
zero = 0
pi = 3.14159
nan = nan
minus_inf = -inf
yes = true
no = false
when = 1979-05-27T07:32:00Z
empty = []
nested = [[1, 2], ["x"], [{ a = 1 }]]
[table]
inline = { k = "v", deeper = { n = 1 } }
[[list]]
name = "first"
[[list]]
name = "second"
)";

TEST(TreeCodec, RoundTripsEveryKindWithPositions) {
    Diagnostics d;
    auto tree = parse_toml(kEveryKind, "every.toml", d);
    ASSERT_TRUE(tree) << (d.empty() ? "" : d[0].render());
    std::string bytes = encode_tree(*tree);
    auto back = decode_tree(bytes);
    ASSERT_TRUE(back);
    EXPECT_TRUE(same(*tree, *back));
    EXPECT_EQ(encode_tree(*back), bytes);
}

TEST(TreeCodec, RejectsEveryTruncationAndTrailingBytes) {
    Diagnostics d;
    auto tree = parse_toml(kEveryKind, "every.toml", d);
    ASSERT_TRUE(tree);
    std::string bytes = encode_tree(*tree);
    for (std::size_t n = 0; n < bytes.size(); ++n)
        EXPECT_FALSE(decode_tree(std::string_view(bytes).substr(0, n))) << n << " bytes";
    EXPECT_FALSE(decode_tree(bytes + '\0'));
    std::string wrong = bytes;
    wrong[0] = 'X';
    EXPECT_FALSE(decode_tree(wrong));
}

TEST(TreeCodec, RejectsCorruptionWithoutReadingPastTheEnd) {
    Diagnostics d;
    auto tree = parse_toml(kEveryKind, "every.toml", d);
    ASSERT_TRUE(tree);
    std::string bytes = encode_tree(*tree);
    // Every single-byte change decodes to something or to nothing, never out of bounds (the
    // sanitizer build checks the reads); a count or an index beyond the input is refused.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (int x : {0x00, 0x7f, 0x80, 0xff}) {
            std::string b = bytes;
            b[i] = static_cast<char>(x);
            (void)decode_tree(b);
        }
    }
    std::string deep = std::string("BTREE1") + '\x01' + '\x01' + 'f';
    // Arrays in arrays, deep enough to overflow the stack of a decoder without a depth limit.
    for (int i = 0; i < 200000; ++i)
        deep += std::string("\x04\x00\x00\x00\x00\x00\x00\x01", 8);
    deep += std::string("\x06\x00\x00\x00\x00\x00\x00", 7);
    EXPECT_FALSE(decode_tree(deep));
}

TEST(TreeCodec, EmbeddedDefaultTreeIsItsTextParsed) {
    if (kEmbeddedDefaultTree.empty()) GTEST_SKIP() << "cross-compiled: no pre-parsed tree";
    auto tree = decode_tree(kEmbeddedDefaultTree);
    ASSERT_TRUE(tree) << "the embedded tree does not decode";
    Diagnostics d;
    auto parsed = parse_toml(kEmbeddedDefault, kEmbeddedDefaultName, d);
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(same(*tree, *parsed));
}

}  // namespace
}  // namespace butter::launcher::profile
