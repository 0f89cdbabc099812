// Capabilities on libcap: the five sets (effective, permitted, inheritable, bounding, ambient),
// securebits, and the drop a sandbox needs. Capability numbers are plain ints (CAP_* values);
// names go through libcap (cap_from_name / cap_to_name), never a private table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "butter/error.hpp"

namespace butter {

// A set of capability numbers (0..63).
class CapabilitySet {
  public:
    CapabilitySet() = default;
    static CapabilitySet from_bits(std::uint64_t bits) {
        CapabilitySet s;
        s.bits_ = bits;
        return s;
    }
    // Every capability this kernel knows (0..last_capability()).
    static CapabilitySet all();
    CapabilitySet& add(int cap) { return bits_ |= bit(cap), *this; }
    CapabilitySet& remove(int cap) { return bits_ &= ~bit(cap), *this; }
    bool has(int cap) const { return (bits_ & bit(cap)) != 0; }
    bool empty() const { return bits_ == 0; }
    std::uint64_t bits() const { return bits_; }
    std::vector<int> list() const;
    // "CAP_CHOWN,CAP_NET_BIND_SERVICE" (or "" when empty).
    std::string to_string() const;
    friend bool operator==(CapabilitySet, CapabilitySet) = default;

  private:
    static std::uint64_t bit(int cap) { return cap >= 0 && cap < 64 ? 1ULL << cap : 0; }
    std::uint64_t bits_ = 0;
};

// "CAP_NET_ADMIN", "cap_net_admin" or "net_admin" -> CAP_NET_ADMIN; an Error naming the text
// otherwise.
[[nodiscard]] Result<int> capability_from_name(std::string_view name);
// CAP_NET_ADMIN -> "CAP_NET_ADMIN".
std::string capability_name(int cap);
// The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap).
int last_capability();

enum class CapFlag { Effective, Permitted, Inheritable };

// A process's effective/permitted/inheritable sets (a libcap cap_t).
class Capabilities {
  public:
    // cap_get_proc(): the calling thread's sets.
    [[nodiscard]] static Result<Capabilities> current();
    // All three sets empty.
    [[nodiscard]] static Result<Capabilities> empty();
    Capabilities(Capabilities&&) noexcept;
    Capabilities& operator=(Capabilities&&) noexcept;
    ~Capabilities();

    bool has(int cap, CapFlag flag) const;
    CapabilitySet get(CapFlag flag) const;
    [[nodiscard]] Result<void> set(CapFlag flag, CapabilitySet caps, bool on);
    // cap_set_proc(). EPERM: raising something not in the permitted set.
    [[nodiscard]] Result<void> apply() const;
    std::string to_text() const;  // libcap's "cap_chown,cap_kill=ep" form

  private:
    struct Impl;
    explicit Capabilities(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The bounding set: PR_CAPBSET_READ / PR_CAPBSET_DROP (drop needs CAP_SETPCAP).
[[nodiscard]] Result<bool> bounding_has(int cap);
[[nodiscard]] Result<void> drop_bounding(int cap);
[[nodiscard]] Result<CapabilitySet> bounding_set();

// The ambient set (PR_CAP_AMBIENT). Raising needs the cap in permitted and inheritable.
[[nodiscard]] Result<bool> ambient_has(int cap);
[[nodiscard]] Result<void> set_ambient(int cap, bool raise);
[[nodiscard]] Result<void> clear_ambient();

// securebits (PR_GET_SECUREBITS / PR_SET_SECUREBITS; setting needs CAP_SETPCAP).
[[nodiscard]] Result<unsigned> securebits();
[[nodiscard]] Result<void> set_securebits(unsigned bits);
// NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, NO_CAP_AMBIENT_RAISE, each with its lock: uid 0 gains
// nothing at exec, and nothing can turn that off again.
unsigned locked_no_root_securebits();

// Drops every capability but `keep` from the bounding set (PR_CAPBSET_DROP per cap, up to the
// last one the kernel knows). Needs CAP_SETPCAP.
[[nodiscard]] Result<void> drop_bounding_all_but(CapabilitySet keep);
// Keeps only `keep` in every set: bounding (each other cap dropped, PR_CAPBSET_DROP per cap),
// inheritable, permitted, effective, and ambient (raised for `keep`, so that the kept caps
// survive exec as a non-root uid). Needs CAP_SETPCAP for the bounding set.
[[nodiscard]] Result<void> drop_all_but(CapabilitySet keep);

// The full drop for a sandbox that keeps nothing: an empty bounding set, the locked no-root
// securebits (so exec as uid 0 grants nothing), then empty effective/permitted/inheritable
// sets (which also empties ambient).
[[nodiscard]] Result<void> drop_all_locked();

}  // namespace butter
