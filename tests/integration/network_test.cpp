// network.mode = "user" end to end, as root and as nobody, in a fake internet of the test's
// own (tests/support/fake-internet: a network namespace with servers on 203.0.113.5-7 and a
// DNS server; nothing reaches a real address): pasta connects the sandbox, butter's DNS
// answers only allowed names, the nftables rules refuse other destinations below the
// program (a raw IP that ignores proxies too), network.audit lets everything through and
// records it, and pasta is gone after the run, also after SIGKILL of butter.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../support/butter_run.hpp"
#include "../support/tmpdir.hpp"
#include "../support/userns.hpp"

namespace butter::test {
namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

bool installed(const char* path) {
    return ::access(path, X_OK) == 0;
}

// The sandbox's probe: each line "NAME: result" for one attempt.
const char* const kProbe = R"(
import socket, subprocess
def attempt(label, f):
    try:
        print(label + ": " + str(f()), flush=True)
    except OSError as e:
        print(label + ": errno " + str(e.errno), flush=True)
def fetch(host, port=80):
    s = socket.create_connection((host, port), timeout=5)
    return s.recv(100).decode().strip()
attempt("resolve web.test", lambda: socket.gethostbyname("web.test"))
attempt("web.test", lambda: fetch("web.test"))
attempt("a.pkg.test", lambda: fetch("a.pkg.test"))
attempt("resolve other.test", lambda: socket.gethostbyname("other.test"))
attempt("raw 203.0.113.6", lambda: fetch("203.0.113.6"))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("udp 203.0.113.6", lambda: u.sendto(b"x", ("203.0.113.6", 9)))
attempt("dns elsewhere", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("203.0.113.6", 53)))
attempt("nft flush", lambda: subprocess.run(["nft", "flush", "ruleset"], capture_output=True).returncode)
)";

class NetworkUser : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        BUTTER_REQUIRE_ROOT();  // the fake internet is made as root; butter runs as either
        BUTTER_REQUIRE(installed("/usr/bin/pasta"), "PASTA", "pasta (passt) not installed");
        BUTTER_REQUIRE(installed("/usr/sbin/nft"), "NFT", "nft (nftables) not installed");
        BUTTER_REQUIRE(installed("/usr/bin/python3"), "PYTHON", "python3 not installed");
        if (nobody())
            BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
        ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
    }
    bool nobody() const { return GetParam(); }
    // `butter ARGS...` in the fake internet, as root or nobody, in the test's directory.
    // With `events`, butter's fd 3 is the file events.jsonl (for --events 3; a file, as
    // nobody may not reopen root's pipe).
    RunResult in_fake_internet(std::vector<std::string> args, bool events = false) {
        std::vector<std::string> argv;
        if (nobody()) argv.push_back("--nobody");
        if (events) argv.insert(argv.end(), {"/bin/sh", "-c", "exec \"$0\" \"$@\" 3>events.jsonl"});
        argv.push_back(butter_bin());
        argv.insert(argv.end(), args.begin(), args.end());
        RunOptions o;
        o.program = BUTTER_FAKE_INTERNET;
        o.cwd = dir_.path();
        return run_butter(argv, o);
    }
    // `sh -c SCRIPT` in the fake internet as root, "$1" butter; `as` before a command runs it
    // as the test's user.
    RunResult run_script(const std::string& script) {
        std::vector<std::string> argv{"/bin/sh", "-c", script, "sh", butter_bin()};
        RunOptions o;
        o.program = BUTTER_FAKE_INTERNET;
        o.cwd = dir_.path();
        return run_butter(argv, o);
    }
    std::string as() const {
        return nobody() ? "setpriv --reuid 65534 --regid 65534 --clear-groups -- " : "";
    }
    std::string report() { return read_file(dir_ / "report.json"); }
    TempDir dir_;
};

TEST_P(NetworkUser, AllowListIsEnforcedBelowTheProgram) {
    RunResult r = in_fake_internet(
        {"run", "--report", dir_ / "report.json", "--set", "network.mode=user", "--set",
         R"(network.allow=["web.test:80", "*.pkg.test:80"])", "--", "python3", "-c", kProbe});
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_TRUE(has(r.out, "resolve web.test: 203.0.113.5")) << r.out;
    EXPECT_TRUE(has(r.out, "web.test: hello from 203.0.113.5")) << r.out;
    EXPECT_TRUE(has(r.out, "a.pkg.test: hello from 203.0.113.7")) << r.out;
    // Not listed: no name (NXDOMAIN), no connection by address, no datagram, no other DNS.
    EXPECT_TRUE(has(r.out, "resolve other.test: errno")) << r.out;
    EXPECT_TRUE(has(r.out, "raw 203.0.113.6: errno 111")) << r.out;  // ECONNREFUSED
    EXPECT_TRUE(has(r.out, "udp 203.0.113.6: errno 1")) << r.out;    // EPERM
    EXPECT_TRUE(has(r.out, "dns elsewhere: errno 1")) << r.out;
    EXPECT_FALSE(has(r.out, "nft flush: 0")) << r.out;  // no CAP_NET_ADMIN inside
    std::string rep = report();
    EXPECT_TRUE(has(rep, R"("kind": "dns", "name": "other.test", "verdict": "refused")")) << rep;
    EXPECT_TRUE(has(rep, R"("kind": "dns", "name": "web.test", "verdict": "allowed")")) << rep;
    EXPECT_TRUE(has(rep, R"("name": "web.test", "address": "203.0.113.5", "port": 80, )"
                         R"("protocol": "tcp", "verdict": "allowed")"))
        << rep;
    EXPECT_TRUE(has(rep, R"("name": null, "address": "203.0.113.6", "port": 80, )"
                         R"("protocol": "tcp", "verdict": "refused")"))
        << rep;
    EXPECT_TRUE(has(rep, R"("address": "203.0.113.6", "port": 9, "protocol": "udp", )"
                         R"("verdict": "refused")"))
        << rep;
}

TEST_P(NetworkUser, WithoutAnAllowListEverythingIsReached) {
    RunResult r =
        in_fake_internet({"run", "--set", "network.mode=user", "--", "python3", "-c", kProbe});
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_TRUE(has(r.out, "web.test: hello from 203.0.113.5")) << r.out;
    EXPECT_TRUE(has(r.out, "resolve other.test: 203.0.113.6")) << r.out;
    EXPECT_TRUE(has(r.out, "raw 203.0.113.6: hello from 203.0.113.6")) << r.out;
    // The host's own services are not the sandbox's: its loopback is its own.
    RunResult lo = in_fake_internet(
        {"run", "--set", "network.mode=user", "--", "python3", "-c",
         "import socket\ntry:\n socket.create_connection(('127.0.0.1', 22), timeout=3)\n"
         " print('reached')\nexcept OSError as e:\n print('errno', e.errno)"});
    EXPECT_TRUE(has(lo.out, "errno 111")) << lo.out << lo.err;
}

TEST_P(NetworkUser, AuditLetsEverythingThroughAndRecordsIt) {
    RunResult r =
        in_fake_internet({"run", "--report", dir_ / "report.json", "--events", "3", "--set",
                          "network.mode=user", "--set", R"(network.allow=["web.test:80"])", "--set",
                          "network.audit=true", "--", "python3", "-c", kProbe},
                         true);
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_TRUE(has(r.out, "raw 203.0.113.6: hello from 203.0.113.6")) << r.out;
    EXPECT_TRUE(has(r.out, "resolve other.test: 203.0.113.6")) << r.out;
    std::string rep = report();
    EXPECT_TRUE(has(rep, R"("kind": "dns", "name": "other.test", "verdict": "audit")")) << rep;
    EXPECT_TRUE(has(rep, R"("name": "other.test", "address": "203.0.113.6", "port": 80, )"
                         R"("protocol": "tcp", "verdict": "audit")"))
        << rep;
    EXPECT_TRUE(has(rep, R"("name": "web.test", "address": "203.0.113.5", "port": 80, )"
                         R"("protocol": "tcp", "verdict": "allowed")"))
        << rep;
    // --events: each as it happened.
    std::string events = read_file(dir_ / "events.jsonl");
    EXPECT_TRUE(has(events, R"("event": "connection")")) << events;
    EXPECT_TRUE(has(events, R"("event": "dns")")) << events;
}

TEST_P(NetworkUser, PastaEndsWithTheRunAndWithAKilledButter) {
    // A count of pasta processes after a plain run, then after SIGKILL of butter mid-run:
    // those in this fake internet's network namespace (other tests' run beside it).
    const std::string count =
        "me=$(readlink /proc/self/ns/net); n=0; for f in /proc/[0-9]*/cmdline; do "
        "d=${f%/cmdline}; tr '\\0' ' ' < $f 2>/dev/null | grep -q '^pasta .*--config-net' && "
        "[ \"$(readlink $d/ns/net)\" = \"$me\" ] && n=$((n+1)); done; echo $n";
    // The count as root (pasta is not dumpable: nobody may not read its namespace), butter as
    // the test's user.
    const std::string as = this->as();
    std::string script = as + "\"$1\" run --set network.mode=user -- true || exit 3; " + count +
                         "; " + as + "\"$1\" run --set network.mode=user -- sleep 30 & b=$!; " +
                         "sleep 2; " + count + "; kill -9 $b; sleep 1; " + count;
    RunResult r = run_script(script);
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_EQ(r.out, "0\n1\n0\n") << r.err;
}

TEST_P(NetworkUser, PublishedPortsAndTheHostsLoopbackOnlyWhenAsked) {
    // In the fake internet, as its "host": a service on its loopback (port 9999), and a
    // sandbox serving on its port 8000, published as the host's 18080.
    const std::string as = this->as();
    const std::string serve =
        "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, "
        "1)\n"
        "s.bind(('0.0.0.0' if len(__import__('sys').argv) < 2 else '127.0.0.1', PORT)); "
        "s.listen(9)\n"
        "while True:\n c, _ = s.accept(); c.sendall(b'WHO\\n'); c.close()\n";
    auto server = [&](const std::string& port, const std::string& who) {
        std::string code = serve;
        code.replace(code.find("PORT"), 4, port);
        code.replace(code.find("WHO"), 3, who);
        return code;
    };
    const std::string fetch =
        "import socket,sys,time\nfor i in range(int(sys.argv[3])):\n try:\n  "
        "s=socket.create_connection("
        "(sys.argv[1], int(sys.argv[2])), timeout=2); d=s.recv(99).decode().strip()\n"
        "  if d:\n   print(d); break\n  err='closed'; time.sleep(0.05)\n"
        " except OSError as e:\n  err=e.errno; time.sleep(0.05)\nelse:\n print('errno', "
        "err)\n";
    // (tries every 50 ms: up to 20 s for the publishing sandbox to listen, a sanitizer build
    // starts slowly; 1 s for the host's loopback, which is reached at once or never)
    std::string script =
        "python3 -c \"" + server("9999", "host loopback") + "\" lo & h=$!; " + as +
        "\"$1\" run --set network.mode=user --set 'network.publish=[\"18080:8000\"]' -- python3 "
        "-c \"" +
        server("8000", "sandbox") + "\" & b=$!; " + "python3 -c \"" + fetch +
        "\" 127.0.0.1 18080 400; kill $b; wait $b; " +
        // The gateway's address is the host's loopback only with host_loopback.
        as + "\"$1\" run --set network.mode=user -- python3 -c \"" + fetch +
        "\" 198.51.100.1 9999 1; " + as +
        "\"$1\" run --set network.mode=user --set network.host_loopback=true -- python3 -c \"" +
        fetch + "\" 198.51.100.1 9999 20; kill $h";
    RunResult r = run_script(script);
    // Unreached: refused, or (pasta answering the handshake itself) never connected or closed
    // without a byte. (pasta accepts on a published port before the sandbox listens, and closes
    // the connection it cannot pass on: the fetch tries again.)
    EXPECT_TRUE(r.out == "sandbox\nerrno 111\nhost loopback\n" ||
                r.out == "sandbox\nerrno None\nhost loopback\n" ||
                r.out == "sandbox\nerrno closed\nhost loopback\n")
        << r.out << r.err;
}

TEST_P(NetworkUser, UnsolicitedDatagramsNeverReachTheSandbox) {
    // pasta passes in any datagram to a host port the sandbox sent from: the rules let in
    // the replies alone. A stranger (203.0.113.6) keeps sending to that port meanwhile.
    const std::string sandbox =
        "import socket\nu=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nu.bind(('0.0.0.0', "
        "40000))\nq=bytes.fromhex('12340100000100000000000003776562047465737400000100' '01')\n"
        "u.sendto(q, ('203.0.113.53', 53))\nu.settimeout(3)\nfrom_=set()\ntry:\n while "
        "True:\n  d, a = u.recvfrom(999); from_.add(a[0])\nexcept OSError:\n pass\n"
        "print(sorted(from_))\n";
    const std::string as = this->as();
    std::string script =
        "nsenter -t $FAKE_INTERNET_FAR -n python3 -c \"import socket,time\ns=socket.socket("
        "socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('203.0.113.6', 7777))\nfor i in range(60):"
        "\n s.sendto(b'x', ('198.51.100.2', 40000)); time.sleep(0.05)\n\" & s=$!; " +
        as +
        "\"$1\" run --set network.mode=user --set 'network.allow=[\"udp:203.0.113.53:53\"]' "
        "-- python3 -c \"" +
        sandbox + "\"; kill $s 2>/dev/null; true";
    RunResult r = run_script(script);
    EXPECT_EQ(r.out, "['203.0.113.53']\n") << r.err;
}

TEST_P(NetworkUser, RebindingAndFloodsGetNothingPastTheRecordOrTheRules) {
    // inside.test is allowed, and answered with 10.9.9.9: nothing opens for it. Then 5000
    // refused names: the connection made first stays in the report, the rest is counted.
    const std::string sandbox =
        "import socket\nsocket.create_connection(('web.test', 80), timeout=5).close()\n"
        "try:\n socket.create_connection(('inside.test', 80), timeout=2); print('reached')\n"
        "except OSError as e:\n print('inside.test', e.errno)\n"
        "u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for i in range(5000):\n q=b'\\x12\\x34\\x01\\x00\\x00\\x01' + b'\\x00'*6 + "
        "bytes([5]) + b'n%04d' % i + b'\\x00\\x00\\x01\\x00\\x01'\n"
        " u.sendto(q, ('127.0.0.53', 53))\n u.settimeout(2); u.recv(999)\n";
    RunResult r = in_fake_internet(
        {"run", "--report", dir_ / "report.json", "--set", "network.mode=user", "--set",
         R"(network.allow=["web.test:80", "inside.test:80"])", "--", "python3", "-c", sandbox});
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_TRUE(has(r.out, "inside.test ")) << r.out;
    EXPECT_FALSE(has(r.out, "reached")) << r.out;
    EXPECT_TRUE(has(r.err,
                    "inside.test answered 10.9.9.9, an address of a private network or of "
                    "the host's own: not opened"))
        << r.err;
    std::string rep = report();
    EXPECT_TRUE(has(rep, R"("name": "web.test", "address": "203.0.113.5", "port": 80, )"
                         R"("protocol": "tcp", "verdict": "allowed")"))
        << rep.substr(0, 2000);
    EXPECT_FALSE(has(rep, R"("uses_dropped": 0})")) << rep.substr(rep.size() - 200);
}

TEST_P(NetworkUser, LongAnswersOverTcpAndIpv6Names) {
    // many.test has 40 addresses: its UDP answer comes truncated and the resolver asks again
    // over TCP, which butter answers too (the addresses opened as for UDP). web6.test is an
    // IPv6 server reached by name; other.test stays refused over TCP.
    const std::string sandbox = R"(
import socket, struct
def attempt(label, f):
    try:
        print(label + ": " + str(f()), flush=True)
    except OSError as e:
        print(label + ": errno " + str(e.errno), flush=True)
def fetch(host, family=socket.AF_INET):
    s = socket.socket(family)
    s.settimeout(5)
    s.connect((host, 80))
    return s.recv(100).decode().strip()
def tcp_queries(*names):
    # All in one write (pipelined), the answers read one after the other.
    out, s = [], socket.create_connection(("127.0.0.53", 53), timeout=5)
    for name in names:
        q = b"\x43\x21\x01\x00\x00\x01" + b"\x00" * 6 + b"".join(
            bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00\x00\x01\x00\x01"
        out.append(struct.pack(">H", len(q)) + q)
    s.sendall(b"".join(out))
    got = []
    for name in names:
        n = struct.unpack(">H", s.recv(2, socket.MSG_WAITALL))[0]
        a = s.recv(n, socket.MSG_WAITALL)
        got.append("%s: id %x rcode %d answers %d" % (name, struct.unpack(">H", a[:2])[0],
                   a[3] & 15, struct.unpack(">H", a[6:8])[0]))
    return "; ".join(got)
attempt("many.test", lambda: len(socket.getaddrinfo("many.test", 80, socket.AF_INET, socket.SOCK_STREAM)))
attempt("fetch 203.0.113.5", lambda: fetch("203.0.113.5"))
attempt("tcp", lambda: tcp_queries("other.test", "web.test", "many.test", "other.test"))
attempt("web6.test", lambda: socket.getaddrinfo("web6.test", 80, socket.AF_INET6, socket.SOCK_STREAM)[0][4][0])
attempt("fetch web6.test", lambda: fetch("2001:db8:ffff::99", socket.AF_INET6))
)";
    RunResult r = in_fake_internet(
        {"run", "--report", dir_ / "report.json", "--set", "network.mode=user", "--set",
         R"(network.allow=["many.test:80", "web.test:80", "web6.test:80"])", "--", "python3", "-c",
         sandbox});
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_TRUE(has(r.out, "many.test: 40\n")) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "fetch 203.0.113.5: hello from 203.0.113.5")) << r.out;
    EXPECT_TRUE(has(r.out,
                    "tcp: other.test: id 4321 rcode 3 answers 0; web.test: id 4321 rcode 0 "
                    "answers 1; many.test: id 4321 rcode 0 answers 40; other.test: id 4321 "
                    "rcode 3 answers 0\n"))
        << r.out;
    EXPECT_TRUE(has(r.out, "web6.test: 2001:db8:ffff::99")) << r.out;
    EXPECT_TRUE(has(r.out, "fetch web6.test: hello from 2001:db8:ffff::99")) << r.out;
    std::string rep = report();
    EXPECT_TRUE(has(rep, R"("name": "web6.test", "address": "2001:db8:ffff::99", "port": 80, )"
                         R"("protocol": "tcp", "verdict": "allowed")"))
        << rep;
    EXPECT_TRUE(has(rep, R"("kind": "dns", "name": "other.test", "verdict": "refused")")) << rep;
}

TEST_P(NetworkUser, LandlockPortRulesWhenAsked) {
    // network.landlock: the list's TCP ports alone, by Landlock too (EACCES for others,
    // before the rules see them), the sandbox's own loopback service's port included.
    const std::string sandbox = R"(
import socket, threading
l = socket.socket(); l.bind(("127.0.0.1", 9000)); l.listen(1)
def attempt(label, address):
    try:
        s = socket.create_connection(address, timeout=5)
        print(label + ": connected", flush=True)
    except OSError as e:
        print(label + ": errno " + str(e.errno), flush=True)
attempt("web.test:80", ("web.test", 80))
attempt("web.test:8080", ("203.0.113.5", 8080))
attempt("loopback:9000", ("127.0.0.1", 9000))
# MPTCP is TCP on the wire, but not to Landlock's port rules: refused outright.
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).connect(("127.0.0.1", 9000))
    print("mptcp: connected", flush=True)
except OSError as e:
    print("mptcp: errno " + str(e.errno), flush=True)
# butter's resolver over TCP (many.test's UDP answer is truncated).
try:
    print("many.test: %d" % len(socket.getaddrinfo("many.test", 80, socket.AF_INET, socket.SOCK_STREAM)), flush=True)
except OSError as e:
    print("many.test: errno " + str(e.errno), flush=True)
)";
    RunResult r =
        in_fake_internet({"run", "--set", "network.mode=user", "--set",
                          R"(network.allow=["web.test:80", "web.test:8080", "many.test:80"])",
                          "--set", "network.landlock=true", "--set", "landlock.tcp_connect=[443]",
                          "--", "python3", "-c", sandbox});
    if (has(r.err, "has no TCP port rules")) GTEST_SKIP() << "[SKIP:LANDLOCK4] no Landlock ABI 4";
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_TRUE(has(r.out, "web.test:80: connected")) << r.out;
    EXPECT_TRUE(has(r.out, "web.test:8080: connected")) << r.out;  // by address: 8080 listed
    EXPECT_TRUE(has(r.out, "loopback:9000: errno 13")) << r.out;   // EACCES, the known cost
    EXPECT_TRUE(has(r.out, "mptcp: errno 93")) << r.out;           // EPROTONOSUPPORT
    EXPECT_TRUE(has(r.out, "many.test: 40")) << r.out;
    // Without the key the sandbox's own loopback service is reached.
    RunResult off =
        in_fake_internet({"run", "--set", "network.mode=user", "--set",
                          R"(network.allow=["web.test:80"])", "--", "python3", "-c", sandbox});
    EXPECT_TRUE(has(off.out, "loopback:9000: connected")) << off.out << off.err;
}

TEST_P(NetworkUser, LearnWritesTheDestinationsAndTheRunKeepsToThem) {
    // butter learn's run has the network with network.audit: the profile allows what it
    // reached, by the name that gave the address; a run with it reaches nothing else.
    const std::string fetch =
        "import socket,sys\nfor h in sys.argv[1:]:\n try:\n  s=socket.create_connection((h, "
        "80), timeout=5); print(h, s.recv(99).decode().strip())\n except OSError as e:\n  "
        "print(h, 'errno', e.errno)\n";
    const std::string as = this->as();
    // The profile in a directory of the test user's own (a profile is read only from such).
    std::string script = "p=$(mktemp -d); chown " + std::string(nobody() ? "65534" : "0") +
                         " $p; " + as + "\"$1\" learn -o $p/l.toml -- python3 -c \"" + fetch +
                         "\" web.test >/dev/null || exit 3; grep -A3 '^\\[network\\]' $p/l.toml; " +
                         as + "\"$1\" run -p $p/l.toml -- python3 -c \"" + fetch +
                         "\" web.test other.test 203.0.113.6; rm -rf $p";
    RunResult r = run_script(script);
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_EQ(r.out,
              "[network]\nmode = \"user\"  # the run connected out (below)\nallow = [\n"
              "  \"web.test:80\",  # connected to 203.0.113.5\n"
              "web.test hello from 203.0.113.5\nother.test errno -2\n203.0.113.6 errno 111\n")
        << r.err;
}

TEST_P(NetworkUser, ForgedLoopbackSourcesOpenNoWayOut) {
    // A reviewer's attack: a socket bound to a remote's IPv6 address (IPV6_FREEBIND) sends to
    // the sandbox's own address over lo; connection tracking would take the listener's answer
    // for a reply and let it out to that remote. Its own loopback takes its own sources only.
    const std::string sandbox =
        "import socket\nl=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
        "l.bind(('::', 40001)); l.settimeout(2)\n"
        "f=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); f.setsockopt(41, 78, 1)\n"
        "f.bind(('2001:db8:ffff::99', 7777))\n"
        "try:\n f.sendto(b'forge', ('2001:db8::2', 40001)); print('forged: sent')\n"
        "except OSError as e:\n print('forged: errno', e.errno)\n"
        "try:\n d, a = l.recvfrom(99); l.sendto(b'exfil', a); print('loopback got', a[0])\n"
        "except OSError:\n print('loopback: nothing')\n";
    const std::string as = this->as();
    std::string script =
        "nsenter -t $FAKE_INTERNET_FAR -n python3 -c \"import socket\ns=socket.socket("
        "socket.AF_INET6, socket.SOCK_DGRAM)\ns.bind(('2001:db8:ffff::99', 7777)); "
        "s.settimeout(4)\ntry:\n print('remote got', s.recvfrom(99))\nexcept OSError:\n "
        "print('remote: nothing')\n\" & r=$!; sleep 0.3; " +
        as +
        "\"$1\" run --set network.mode=user --set 'network.allow=[\"web.test:80\"]' -- "
        "python3 -c \"" +
        sandbox + "\"; wait $r";
    RunResult r = run_script(script);
    EXPECT_TRUE(has(r.out, "forged: errno 1")) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "loopback: nothing")) << r.out;
    EXPECT_TRUE(has(r.out, "remote: nothing")) << r.out;
}

// pasta's own failure is butter's one-line error: this machine's /dev/net/tun is 0600 (hosts
// ship 0666), which nobody's pasta cannot open.
TEST(NetworkUserErrors, PastaFailsInOneLine) {
    BUTTER_REQUIRE(installed("/usr/bin/pasta"), "PASTA", "pasta (passt) not installed");
    BUTTER_REQUIRE(have_userns(), "USERNS", "user namespaces unavailable for nobody");
    struct stat st {};
    BUTTER_REQUIRE(::stat("/dev/net/tun", &st) == 0 && !(st.st_mode & S_IWOTH), "TUN0600",
                   "/dev/net/tun is writable by all here: pasta would work");
    RunOptions o;
    o.as_nobody = true;
    o.cwd = "/";
    RunResult r = run_butter({"run", "--set", "network.mode=user", "--", "/bin/true"}, o);
    EXPECT_EQ(r.code, 125);
    EXPECT_TRUE(has(r.err, "butter: pasta: could not connect the sandbox's network: ")) << r.err;
    EXPECT_TRUE(has(r.err, "tun")) << r.err;
    // No pasta where butter looks: the package to install, at the key.
    RunOptions none;
    none.cwd = "/";
    none.env = {"PATH=/nonexistent"};
    RunResult missing = run_butter({"run", "--set", "network.mode=user", "--", "/bin/true"}, none);
    EXPECT_EQ(missing.code, 125);
    EXPECT_TRUE(has(missing.err, "network.mode = \"user\" needs pasta (Debian's passt package"))
        << missing.err;
}

INSTANTIATE_TEST_SUITE_P(RootAndNobody, NetworkUser, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "nobody" : "root"; });

}  // namespace
}  // namespace butter::test
