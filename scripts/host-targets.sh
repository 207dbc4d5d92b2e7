#!/usr/bin/env bash
# The host targets of the README's platform table (issue #7, part 6):
# builds `mls-nostd` and `platform-std` for every OS target, and runs tests on
# i686 Linux (natively, multilib) and aarch64 Linux (under qemu-user).
# x86_64 Linux is built and tested by test.sh's `cargo test --workspace`.
#
# Installs what it needs when missing: the Rust targets (rustup), a working
# i686 linker (gcc multilib), an aarch64 cross linker with its libc, and
# qemu-user (apt). Ends with a table: per target, build / tests / how; exits
# non-zero if any build or test failed.
#
# Targets that cannot be linked without a vendor SDK (Windows MSVC, Apple,
# Android) build their libraries (rlibs, full code generation; no linking):
# `cargo build --lib --profile host-targets`.
#
# `--ci` (what ./test.sh runs, to keep CI short): on i686 only the core's
# unit and integration tests (a 32-bit `usize` with overflow checks, which
# the firmware's release builds do not have); no official vectors there
# (140 of the i686 job's 247 s on December 7, 2026: the firmware runs the
# suite-3 vectors on three 32-bit CPUs, the full run all seven suites on
# i686), no platform-std tests, no mls-fleet; one target of each other OS
# (Windows, macOS, Android, iOS, wasm32) is type-checked (`cargo check
# --lib`) instead of built, and no aarch64 cross toolchain or qemu-user is
# installed.
#
# Environment:
#   MLS_TEST_VECTORS  folder of the official test vectors
#                     (default: <repo root>/tests/data/test-vectors)
set -uo pipefail
cd "$(dirname "$0")/.."
ci=0
[ "${1:-}" = --ci ] && ci=1

start=$SECONDS
vectors="${MLS_TEST_VECTORS:-tests/data/test-vectors}"
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

# Build-only targets: Windows (MSVC), macOS, Android, iOS, the iOS simulator,
# and wasm32 (browser/Node, with platform-std's `wasm_js` OS RNG).
BUILD_ONLY=(
    x86_64-pc-windows-msvc
    i686-pc-windows-msvc
    x86_64-apple-darwin
    aarch64-apple-darwin
    aarch64-linux-android
    aarch64-apple-ios
    aarch64-apple-ios-sim
    wasm32-unknown-unknown
)
# Targets whose tests run here.
TESTED=(i686-unknown-linux-gnu aarch64-unknown-linux-gnu)
if [ "$ci" = 1 ]; then
    TESTED=(i686-unknown-linux-gnu)
    # One target per OS (the full run checks every one; about 16 s each):
    # our code's only target cfgs are `unix` / `not(unix)`, and each
    # architecture is checked with another OS (x86_64 and i686 Linux run
    # the tests, aarch64 is checked for macOS, iOS and Android). Not the iOS
    # simulator either: rustup has no rust-std for it here, so its std is
    # built from source (42 of the step's 250 s on December 7, 2026).
    BUILD_ONLY=(
        x86_64-pc-windows-msvc
        aarch64-apple-darwin
        aarch64-linux-android
        aarch64-apple-ios
        wasm32-unknown-unknown
    )
fi

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
rows=()      # target|build|tests|how
failed=0
row() { rows+=("$1|$2|$3|$4"); }

echo "-- Rust targets"
installed=$(rustup target list --installed)
no_rust_std=()   # targets whose rust-std cannot be installed: built with -Zbuild-std
for t in "${TESTED[@]}" "${BUILD_ONLY[@]}"; do
    grep -qx "$t" <<<"$installed" && continue
    if ! rustup target add "$t"; then
        echo "rustup cannot install rust-std for $t: building its std from rust-src instead" >&2
        no_rust_std+=("$t")
    fi
done
if [ "${#no_rust_std[@]}" -gt 0 ] && ! rustup component list --installed | grep -q '^rust-src'; then
    rustup component add rust-src
fi

echo "-- linkers and qemu-user"
cc_m32_works() {
    echo 'int main(void){return 0;}' | cc -m32 -x c - -o "$log_dir/m32" 2>/dev/null
}
aarch64_missing() {
    [ "$ci" = 0 ] && { ! command -v aarch64-linux-gnu-gcc >/dev/null \
        || ! command -v qemu-aarch64 >/dev/null || [ ! -d /usr/aarch64-linux-gnu/lib ]; }
}
if ! cc_m32_works || aarch64_missing; then
    # Debian's `gcc-multilib` meta-package conflicts with the aarch64 cross
    # compiler; the versioned `gcc-N-multilib` does not.
    gcc_major=$(gcc -dumpversion | cut -d. -f1)
    packages=("gcc-$gcc_major-multilib")
    [ "$ci" = 0 ] && packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
    cc_m32_works || { echo "FAIL: cc -m32 still cannot link" >&2; exit 1; }
fi
# SQLite (rusqlite's bundled C) includes <linux/types.h>, hence <asm/types.h>:
# for -m32 that is the /usr/include/asm link of the `gcc-multilib`
# meta-package, which conflicts with the aarch64 cross compiler. The same link,
# in a fixed folder (a path that changes would rebuild SQLite every run).
i686_include="$PWD/target/i686-include"
mkdir -p "$i686_include" && ln -sfn /usr/include/x86_64-linux-gnu/asm "$i686_include/asm"
export CFLAGS_i686_unknown_linux_gnu="-I$i686_include"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

# Sums the `N passed` of cargo's `test result:` lines and of mls-vectors' lines.
count_passed() { grep -Eo '(ok\. |: )[0-9]+ passed' "$1" | awk '{ n += $(NF-1) } END { print n + 0 }'; }

echo "-- tests on i686 and aarch64 Linux"
for t in "${TESTED[@]}"; do
    case "$t" in
        i686-*) how_run="native (cc -m32)" ;;
        aarch64-*) how_run="qemu-aarch64 -L /usr/aarch64-linux-gnu; linker aarch64-linux-gnu-gcc" ;;
    esac
    t0=$SECONDS
    log="$log_dir/$t.log"
    echo "== $t: cargo test -p mls-nostd --tests; platform-std's library tests; mls-vectors; mls-fleet"
    ok=1
    cargo test -p mls-nostd --tests --target "$t" 2>&1 | tee "$log" || ok=0
    nostd=$(count_passed "$log")
    vec="not run (--ci)"; pstd="not run (--ci)"; fleet="not run (--ci)"
    if [ "$ci" = 0 ]; then
        cargo run -q -p mls-tests --bin mls-vectors --target "$t" -- "$vectors"/*.json 2>&1 | tee "$log" || ok=0
        vec="$(count_passed "$log") passed"
        # platform-std's tests that run in-process (tests/fleet.rs spawns the
        # binary, which qemu-user cannot do without binfmt; mls-fleet runs below).
        cargo test -p platform-std --target "$t" --test parallel_executor --test file_store --test zero_alloc 2>&1 | tee "$log" || ok=0
        pstd=$(count_passed "$log")
        # The OS RNG (getrandom), the SQLite store and the std adapter as a
        # program on the target: a small fleet.
        rm -rf "$log_dir/fleet-$t"
        cargo run -q -p platform-std --bin mls-fleet --target "$t" -- --members 4 --rounds 1 \
            --state-dir "$log_dir/fleet-$t" 2>&1 | tee "$log" || ok=0
        fleet=ran
    fi
    if [ "$ok" = 1 ]; then
        tests="yes: mls-nostd $nostd, platform-std $pstd, vectors $vec; mls-fleet $fleet"
    else
        tests="FAILED"; failed=1
    fi
    row "$t" "yes" "$tests ($((SECONDS - t0)) s)" "$how_run"
done

echo "-- builds of the other targets"
for t in "${BUILD_ONLY[@]}"; do
    t0=$SECONDS
    # Without `sqlite` (and `fleet`, which needs it): rusqlite's bundled
    # SQLite is C, compiled by the target's C compiler, and these targets'
    # SDKs are not here.
    features=(--no-default-features --features platform-std/parallel)
    [ "$t" = wasm32-unknown-unknown ] && features=(--no-default-features --features platform-std/parallel,platform-std/wasm_js)
    zbuild=(); envs=()
    build=build
    [ "$ci" = 1 ] && build=check
    how="cargo $build --lib --profile host-targets"
    if printf '%s\n' "${no_rust_std[@]}" | grep -qx "$t"; then
        # No prebuilt rust-std for it from rustup here: std from rust-src, same compiler.
        zbuild=(-Zbuild-std=std,panic_abort); envs=(RUSTC_BOOTSTRAP=1)
        how="$how, std built from rust-src (RUSTC_BOOTSTRAP=1 -Zbuild-std: rustup's rust-std unavailable)"
    fi
    [ "${#features[@]}" -gt 0 ] && how="$how ${features[*]}"
    echo "== $t: $how"
    if env "${envs[@]}" cargo "$build" "${zbuild[@]}" -p mls-nostd -p platform-std --lib \
        "${features[@]}" --profile host-targets --target "$t"; then
        b="yes ($((SECONDS - t0)) s)"
    else
        b="FAILED"; failed=1
    fi
    row "$t" "$b" "—" "$how"
done

echo
echo "host targets ($((SECONDS - start)) s in all):"
printf '%-28s | %-12s | %s\n' target build tests
for r in "${rows[@]}"; do
    IFS='|' read -r t b ts how <<<"$r"
    printf '%-28s | %-12s | %s\n' "$t" "$b" "$ts"
    printf '%-28s   how: %s\n' "" "$how"
done
printf '%-28s | %-12s | %s\n' x86_64-unknown-linux-gnu "test.sh" "test.sh: cargo test --workspace"
if [ "$failed" != 0 ]; then
    echo "FAIL: a host target did not build or its tests failed" >&2
    exit 1
fi
