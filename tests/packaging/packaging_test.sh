#!/bin/sh
# Packaging, end to end: `cmake --install` lays out everything; a consumer builds against the
# installed libbutter with find_package and with pkg-config; the man pages render; the .debs
# unpack into a scratch root where butter runs and finds its profiles; bash completion works.
# The .debs install under /usr: from a tree configured with another prefix, cpack must refuse
# to make them (butter's profile directory is compiled in from the prefix).
# usage: packaging_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
# lib, or lib/x86_64-linux-gnu (Debian's multiarch directory) in a tree configured for /usr.
lib=$(cache CMAKE_INSTALL_LIBDIR)
configured_prefix=$(cache CMAKE_INSTALL_PREFIX)
[ -n "$lib" ] || fail "no CMAKE_INSTALL_LIBDIR in $build/CMakeCache.txt"

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/butter bin/butter-oci share/man/man1/butter-oci.1 $lib/libbutter.a $lib/libbutter.so include/butter/fd.hpp \
         include/butter/loop.hpp $lib/libbutter-sandbox.a include/butter/sandbox.hpp include/butter/pool.hpp \
         $lib/pkgconfig/butter-sandbox.pc \
         share/butter/profiles/default.toml share/butter/profiles/untrusted.toml \
         share/man/man1/butter.1 share/man/man5/butter-profile.5 \
         share/bash-completion/completions/butter $lib/pkgconfig/butter.pc \
         $lib/cmake/butter/butterConfig.cmake $lib/cmake/butter/butterTargets.cmake \
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

export PKG_CONFIG_PATH="$prefix/$lib/pkgconfig"
# shellcheck disable=SC2046
c++ -o "$tmp/c2" "$src/tests/packaging/consumer/consumer.cpp" $(pkg-config --cflags --libs butter)
LD_LIBRARY_PATH="$prefix/$lib" "$tmp/c2" | grep -qx "consumer ok" || fail "pkg-config consumer"
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

if [ "$configured_prefix" != /usr ]; then
    # The .debs would install under /usr a butter that looks for profiles under this prefix.
    if (cd "$build" && cpack -G DEB -B "$tmp/deb") >"$tmp/cpack.log" 2>&1; then
        fail "cpack made .debs from a tree configured with prefix $configured_prefix"
    fi
    grep -q "packages install under /usr" "$tmp/cpack.log" ||
        { cat "$tmp/cpack.log" >&2; fail "cpack's refusal"; }
    echo ".deb: refused for prefix $configured_prefix (ok: they are tested from a tree for /usr)"
else
    (cd "$build" && cpack -G DEB -B "$tmp/deb") >"$tmp/cpack.log" 2>&1 ||
        { cat "$tmp/cpack.log" >&2; fail "cpack"; }
    deb=$(ls "$tmp"/deb/butter_*.deb)
    libdeb=$(ls "$tmp"/deb/libbutter0_*.deb)
    dev=$(ls "$tmp"/deb/butter-dev_*.deb)
    ls "$tmp"/deb/butter-dbgsym_*.ddeb "$tmp"/deb/libbutter0-dbgsym_*.ddeb >/dev/null ||
        fail "no -dbgsym packages"
    version=$(dpkg-deb -f "$deb" Version)
    depends() { dpkg-deb -f "$1" Depends; }
    depends "$libdeb" | grep -q "libseccomp2" || fail "libbutter0.deb Depends: $(depends "$libdeb")"
    depends "$dev" | grep -q "libbutter0 (= $version)" ||
        fail "butter-dev.deb Depends: $(depends "$dev")"
    [ -z "$(depends "$deb")" ] || fail "the static butter.deb has Depends: $(depends "$deb")"
    for p in "$deb" "$libdeb" "$dev"; do
        name=$(dpkg-deb -f "$p" Package)
        dpkg-deb -c "$p" > "$tmp/$name.list"
        for f in copyright changelog.gz; do
            grep -q "/usr/share/doc/$name/$f$" "$tmp/$name.list" || fail "$name.deb: no $f"
        done
    done
    grep -q "libbutter\.so" "$tmp/butter.list" && fail "butter.deb holds libbutter.so"
    grep -q "include/butter/fd.hpp" "$tmp/butter-dev.list" || fail "butter-dev.deb: no headers"
    grep -q "/usr/$lib/libbutter.so -> libbutter.so.0$" "$tmp/butter-dev.list" ||
        fail "butter-dev.deb: no libbutter.so link"
    dpkg-deb --control "$libdeb" "$tmp/libctrl"
    ctrl=$tmp/libctrl
    grep -qx "libbutter 0 libbutter0 (>= $version)" "$ctrl/shlibs" || fail "libbutter0: shlibs"
    grep -qx "activate-noawait ldconfig" "$ctrl/triggers" || fail "libbutter0: ldconfig trigger"
    test -e "$ctrl/postinst" && fail "libbutter0.deb has a postinst"
    dpkg -x "$deb" "$tmp/root"
    dpkg -x "$libdeb" "$tmp/root"
    "$tmp/root/usr/bin/butter" --version | grep -q "^butter " || fail "the .deb's butter --version"
    [ "$(readlink "$tmp/root/usr/bin/butter-oci")" = butter ] || fail "the .deb's butter-oci link"
    "$tmp/root/usr/bin/butter-oci" features | grep -q '"ociVersionMax"' || fail "butter-oci features"
    test -e "$tmp/root/usr/share/man/man1/butter-oci.1.gz" || fail "the .deb's butter-oci(1)"
    file -L "$tmp/root/usr/bin/butter" | grep -q ", stripped" || fail "butter is not stripped"
    soname=$(objdump -p "$tmp/root/usr/$lib/libbutter.so.0" | awk '$1 == "SONAME" {print $2}')
    [ "$soname" = libbutter.so.0 ] || fail "libbutter0.deb: SONAME '$soname'"
    # Unpacked, not installed: butter looks only where profiles are installed (never next to the
    # binary, where anyone who can write the tree could plant one), so point it at them. The
    # directory it looks in by itself, and the one butter(1) names, is /usr/share/butter/profiles.
    BUTTER_PROFILE_PATH="$tmp/root/usr/share/butter/profiles" "$tmp/root/usr/bin/butter" profiles |
        grep -q "^untrusted .*Strictest" || fail "the .deb's butter lists its profiles"
    grep -q /usr/share/butter/profiles "$tmp/root/usr/bin/butter" || fail "butter's profile dir"
    gzip -dc "$tmp/root/usr/share/man/man1/butter.1.gz" > "$tmp/butter.1"
    grep -q "/usr/share/butter/profiles" "$tmp/butter.1" || fail "butter(1)'s profile directory"
    # python3-butter, when the tree built the Python package: the module for the one Python
    # it was built against, importable from the unpacked tree.
    pydeb=$(ls "$tmp"/deb/python3-butter_*.deb 2>/dev/null || true)
    if [ -n "$pydeb" ]; then
        depends "$pydeb" | grep -q "python3 (>= 3\.[0-9]*), python3 (<< 3\.[0-9]*)" ||
            fail "python3-butter.deb Depends: $(depends "$pydeb")"
        dpkg-deb -c "$pydeb" | grep -q "/usr/share/doc/python3-butter/copyright$" ||
            fail "python3-butter.deb: no copyright"
        dpkg -x "$pydeb" "$tmp/root"
        PYTHONPATH="$tmp/root/usr/lib/python3/dist-packages" /usr/bin/python3 -c \
            'import butter.inotify, butter.sandbox; print(butter.inotify.Inotify().watch("/"))' |
            grep -qx 1 || fail "python3-butter: the unpacked module does not import"
    fi
    echo ".deb: ok"
fi

out=$(BUTTER_PROFILE_PATH="$prefix/share/butter/profiles" \
      bash -c ". '$prefix/share/bash-completion/completions/butter'; PATH='$prefix/bin':\$PATH
                COMP_WORDS=(butter r); COMP_CWORD=1; _butter; echo \${COMPREPLY[@]}
                COMP_WORDS=(butter run --pro); COMP_CWORD=2; _butter; echo \${COMPREPLY[@]}
                COMP_WORDS=(butter run -p unt); COMP_CWORD=3; _butter; echo \${COMPREPLY[@]}")
echo "$out" | sed -n 1p | grep -qx "run" || fail "completion of commands: $out"
echo "$out" | sed -n 2p | grep -qx -- "--profile" || fail "completion of flags: $out"
echo "$out" | sed -n 3p | grep -qx "untrusted" || fail "completion of profiles: $out"
echo "bash completion: ok"
