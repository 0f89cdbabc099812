#!/bin/sh
# Packaging, end to end: `cmake --install` lays out everything; a consumer builds against the
# installed libbutter with find_package and with pkg-config; the man pages render; the .debs
# unpack into a scratch root where butter runs and finds its profiles; bash completion works.
# usage: packaging_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/butter lib/libbutter.a lib/libbutter.so include/butter/fd.hpp include/butter/loop.hpp \
         lib/libbutter-sandbox.a include/butter/sandbox.hpp lib/pkgconfig/butter-sandbox.pc \
         share/butter/profiles/default.toml share/butter/profiles/untrusted.toml \
         share/man/man1/butter.1 share/man/man5/butter-profile.5 \
         share/bash-completion/completions/butter lib/pkgconfig/butter.pc \
         lib/cmake/butter/butterConfig.cmake lib/cmake/butter/butterTargets.cmake \
         share/doc/butter/examples/systemd/butter-example.service \
         share/doc/butter/examples/systemd/butter-example.socket \
         share/doc/butter/examples/sandbox/sandbox_jobs.cpp share/butter/gitlab/run.sh \
         share/butter/gitlab/config.sh share/butter/gitlab/common.sh; do
    test -e "$prefix/$f" || fail "cmake --install did not install $f"
done
echo "install layout: ok"

cmake -S "$src/tests/packaging/consumer" -B "$tmp/c1" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/c1" >/dev/null
"$tmp/c1/consumer" | grep -qx "consumer ok" || fail "find_package consumer"
"$tmp/c1/sandbox_consumer" | grep -qx "sandbox consumer ok" || fail "find_package sandbox consumer"
echo "find_package(butter): ok"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
c++ -o "$tmp/c2" "$src/tests/packaging/consumer/consumer.cpp" $(pkg-config --cflags --libs butter)
LD_LIBRARY_PATH="$prefix/lib" "$tmp/c2" | grep -qx "consumer ok" || fail "pkg-config consumer"
# shellcheck disable=SC2046
c++ -o "$tmp/c3" "$src/tests/packaging/consumer/consumer.cpp" $(pkg-config --static --cflags --libs butter) -static
"$tmp/c3" | grep -qx "consumer ok" || fail "pkg-config --static consumer"
# shellcheck disable=SC2046
c++ -o "$tmp/c4" "$src/tests/packaging/consumer/sandbox_consumer.cpp" -pthread \
    $(pkg-config --cflags --libs butter-sandbox)
# (No LD_LIBRARY_PATH: the two archives link in, nothing is loaded from the prefix.)
"$tmp/c4" | grep -qx "sandbox consumer ok" ||
    fail "pkg-config sandbox consumer"
echo "pkg-config butter, butter-sandbox: ok"

MANWIDTH=100 man -l "$prefix/share/man/man1/butter.1" 2>&1 | grep -q "isolated Linux sandbox" || fail "man butter(1)"
MANWIDTH=100 man -l "$prefix/share/man/man5/butter-profile.5" 2>&1 | grep -q "filesystem.mounts" || fail "man butter-profile(5)"
echo "man pages: ok"

(cd "$build" && cpack -G DEB -B "$tmp/deb" >/dev/null) || fail "cpack"
deb=$(ls "$tmp"/deb/butter_*.deb)
dev=$(ls "$tmp"/deb/butter-dev_*.deb)
dpkg-deb -f "$deb" Depends | grep -q "libseccomp2" || fail "butter.deb Depends: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$dev" Depends | grep -q "butter (=" || fail "butter-dev.deb Depends"
dpkg -x "$deb" "$tmp/root"
"$tmp/root/usr/bin/butter" --version | grep -q "^butter " || fail "butter --version from the .deb"
# Unpacked, not installed: butter looks only where profiles are installed (never next to the
# binary, where anyone who can write the tree could plant one), so point it at them.
BUTTER_PROFILE_PATH="$tmp/root/usr/share/butter/profiles" "$tmp/root/usr/bin/butter" profiles |
    grep -q "^untrusted .*Strictest" || fail "the .deb's butter lists its profiles"
test -e "$tmp/root/usr/lib/libbutter.so.0" || ls -R "$tmp/root/usr/lib" >&2
dpkg -c "$dev" > "$tmp/dev.list"
grep -q "include/butter/fd.hpp" "$tmp/dev.list" || fail "butter-dev.deb holds the headers"
echo ".deb: ok"

out=$(BUTTER_PROFILE_PATH="$prefix/share/butter/profiles" \
      bash -c ". '$prefix/share/bash-completion/completions/butter'; PATH='$prefix/bin':\$PATH
                COMP_WORDS=(butter r); COMP_CWORD=1; _butter; echo \${COMPREPLY[@]}
                COMP_WORDS=(butter run --pro); COMP_CWORD=2; _butter; echo \${COMPREPLY[@]}
                COMP_WORDS=(butter run -p unt); COMP_CWORD=3; _butter; echo \${COMPREPLY[@]}")
echo "$out" | sed -n 1p | grep -qx "run" || fail "completion of commands: $out"
echo "$out" | sed -n 2p | grep -qx -- "--profile" || fail "completion of flags: $out"
echo "$out" | sed -n 3p | grep -qx "untrusted" || fail "completion of profiles: $out"
echo "bash completion: ok"
