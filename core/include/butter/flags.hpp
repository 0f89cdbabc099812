// Flags<E>: a typed bitset over a flag enum, with a readable to_string for messages.
//
// A flag enum opts in by declaring, next to the enum, a function found by ADL:
//
//     enum class InotifyMask : uint32_t { Access = IN_ACCESS, ... };
//     std::span<const FlagName<InotifyMask>> flag_names(InotifyMask);
//
// which enables `E | E -> Flags<E>` and `to_string(Flags<E>)` ("Create|IsDir"; bits with no
// name print as hex, so nothing is hidden).
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace butter {

template <typename E>
struct FlagName {
    E value;
    std::string_view name;
};

template <typename E>
concept FlagEnum = std::is_enum_v<E> && requires(E e) {
    { flag_names(e) } -> std::convertible_to<std::span<const FlagName<E>>>;
};

template <typename E>
class Flags {
  public:
    using Raw = std::underlying_type_t<E>;

    constexpr Flags() = default;
    constexpr Flags(E e) : bits_(static_cast<Raw>(e)) {}  // NOLINT: implicit on purpose
    static constexpr Flags from_raw(Raw raw) {
        Flags f;
        f.bits_ = raw;
        return f;
    }

    constexpr Raw raw() const { return bits_; }
    constexpr bool empty() const { return bits_ == 0; }
    explicit constexpr operator bool() const { return bits_ != 0; }
    // All bits of `f` are set.
    constexpr bool has(Flags f) const { return (bits_ & f.bits_) == f.bits_ && f.bits_ != 0; }
    // Any bit of `f` is set.
    constexpr bool any(Flags f) const { return (bits_ & f.bits_) != 0; }

    constexpr Flags operator|(Flags o) const { return from_raw(bits_ | o.bits_); }
    constexpr Flags operator&(Flags o) const { return from_raw(bits_ & o.bits_); }
    constexpr Flags operator^(Flags o) const { return from_raw(bits_ ^ o.bits_); }
    constexpr Flags operator~() const { return from_raw(static_cast<Raw>(~bits_)); }
    constexpr Flags& operator|=(Flags o) { return bits_ |= o.bits_, *this; }
    constexpr Flags& operator&=(Flags o) { return bits_ &= o.bits_, *this; }
    constexpr Flags without(Flags o) const { return from_raw(bits_ & static_cast<Raw>(~o.bits_)); }
    friend constexpr bool operator==(Flags, Flags) = default;

  private:
    Raw bits_ = 0;
};

template <FlagEnum E>
constexpr Flags<E> operator|(E a, E b) {
    return Flags<E>(a) | Flags<E>(b);
}

// "A|B|0x40": names in table order; a table entry matches only when all its bits are set, and
// composite entries listed first win over their parts.
template <FlagEnum E>
std::string to_string(Flags<E> flags) {
    using Raw = typename Flags<E>::Raw;
    std::string out;
    Raw left = flags.raw();
    for (const FlagName<E>& n : flag_names(E{})) {
        Raw bits = static_cast<Raw>(n.value);
        if (bits == 0 || (left & bits) != bits) continue;
        if (!out.empty()) out += '|';
        out += n.name;
        left = static_cast<Raw>(left & ~bits);
    }
    if (left != 0) {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string hex;
        for (auto v = static_cast<std::uint64_t>(left); v != 0; v >>= 4)
            hex.insert(hex.begin(), kHex[v & 15]);
        if (!out.empty()) out += '|';
        out += "0x" + hex;
    }
    return out.empty() ? "0" : out;
}

template <FlagEnum E>
std::string to_string(E e) {
    return to_string(Flags<E>(e));
}

}  // namespace butter
