#!/usr/bin/env bash
# Counts the panic paths left in the release firmware of the Cortex-M4 board
# (board-mps2-an386, thumbv7em-none-eabihf, as boards/run-tests.sh builds it)
# and says where each comes from.
#
#   boards/panic-paths.sh [ELF]     (default: builds and reads the release ELF)
#
# How: disassemble the ELF (arm-none-eabi-objdump) and take every branch
# (bl, b.w, ...) into a function of Rust's panic machinery: `core::panicking::*`
# (panic, panic_fmt, panic_bounds_check, panic_const_*, ...), the
# unwrap/expect failures of Option and Result, the slice and str index
# failures, `copy_from_slice`'s length mismatch, sort's order violation, and
# the panic handler. Each call site is resolved with the DWARF inline chain
# (arm-none-eabi-addr2line -i; the release profile keeps symbols) and
# attributed to the innermost frame that is not Rust's standard library:
#   core        the frame is in mls-nostd/src        <- the number that counts
#   dependency  a crate from the registry (its name)
#   firmware    boards/ code (harness, board crates)
# A call into a standard-library function compiled out of line that itself
# contains a panic path (generic code such as sort_unstable or copy_within)
# counts as a panic path of the call site, attributed the same way.
#
# Exit status: 0 when no panic path originates in the core, 1 otherwise
# (the list says which), 2 on a usage or tool error.
set -euo pipefail
cd "$(dirname "$0")"

target=thumbv7em-none-eabihf
elf="${1:-}"
if [ -z "$elf" ]; then
    cargo build --release -q -p board-mps2-an386 --target "$target"
    elf="${CARGO_TARGET_DIR:-target}/$target/release/board-mps2-an386"
fi
[ -f "$elf" ] || { echo "no ELF at $elf" >&2; exit 2; }
for tool in arm-none-eabi-objdump arm-none-eabi-addr2line python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (Debian: apt-get install binutils-arm-none-eabi python3)" >&2; exit 2; }
done

python3 - "$elf" <<'PY'
import collections, re, subprocess, sys

elf = sys.argv[1]
dis = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", "-C", elf],
                     capture_output=True, text=True, check=True).stdout.splitlines()

# Rust's panic machinery, by (demangled) name; crate hashes like core[..] stripped.
PANIC = re.compile(
    r"^(core::panicking::|core::option::(unwrap|expect)_failed|core::result::unwrap_failed"
    r"|core::cell::panic_|core::slice::index::.*_fail|core::str::.*_fail|core::slice::copy_from_slice_impl::len_mismatch_fail"
    r"|core::slice::sort::.*panic_on_ord_violation|.*rust_begin_unwind$)")
# Standard-library code (generic functions instantiated out of line).
STD = re.compile(r"^<?core::")

def clean(name):
    name = re.sub(r"\[[0-9a-f]+\]", "", name)
    return re.sub(r"::h[0-9a-f]{16}$", "", name)

header = re.compile(r"^([0-9a-f]+) <(.+)>:$")
branch = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s+([0-9a-f]+) <(.+?)(\+0x[0-9a-f]+)?>$")
func = None
branches = []        # (address, containing function, target function)
for line in dis:
    m = header.match(line)
    if m:
        func = clean(m.group(2))
        continue
    m = branch.match(line)
    if m and func is not None and m.group(5) is None:
        target = clean(m.group(4))
        if target != func:
            branches.append((int(m.group(1), 16), func, target))

def resolve(addrs):
    """addr -> inline chain [(function, file:line)], innermost first."""
    addrs = sorted(set(addrs))
    if not addrs:
        return {}
    out = subprocess.run(["arm-none-eabi-addr2line", "-a", "-f", "-i", "-C", "-e", elf] + [hex(a) for a in addrs],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    chains, cur, i = {}, None, 0
    while i < len(out):
        if re.match(r"^0x[0-9a-f]+$", out[i]):
            cur = int(out[i], 16)
            chains[cur] = []
            i += 1
            continue
        loc = out[i + 1] if i + 1 < len(out) else "??:0"
        chains[cur].append((clean(out[i]), loc))
        i += 2
    return chains

def origin(chain):
    """(kind, function, file:line) of the innermost frame outside Rust's standard library."""
    for fn, loc in chain:
        path = loc.split(" (")[0]
        if "/rustc/" in path or "/library/core/" in path or path.startswith("??"):
            continue
        if "mls-nostd/src" in path:
            return "core", fn, path
        m = re.search(r"registry/src/[^/]+/([^/]+)/", path)
        if m:
            return "dependency " + re.sub(r"-[0-9][^/]*$", "", m.group(1)), fn, path
        if "/boards/" in path:
            return "firmware", fn, path
        return "other", fn, path
    return "standard library", chain[0][0] if chain else "?", chain[0][1] if chain else "?"

# Branches into the panic machinery, and into standard-library functions
# compiled out of line (generic code such as sort_unstable or copy_within)
# that have a panic path of their own: a branch whose origin is
# standard-library code, directly or through another such function. A
# branch whose origin is outside the standard library is a site of that
# origin, also when it sits in a std function (a closure of ours inlined
# into Result::and_then, say); one of std origin is counted at the callers
# of its function.
panicky, chains, kind_of = set(), {}, {}
while True:
    cand = [(a, f, t) for a, f, t in branches if (PANIC.match(t) or t in panicky) and not PANIC.match(f)]
    chains.update(resolve(a for a, _, _ in cand if a not in chains))
    for a, _, _ in cand:
        kind_of.setdefault(a, origin(chains.get(a, [])))
    more = {f for a, f, _ in cand if STD.match(f) and kind_of[a][0] == "standard library"} - panicky
    if not more:
        break
    panicky |= more
sites = [(a, f, t) for a, f, t in cand if not (f in panicky and kind_of[a][0] == "standard library")]

def short(path):
    path = re.sub(r".*/(mls-nostd/src/)", r"\1", path)
    path = re.sub(r".*/registry/src/[^/]+/", "", path)
    return re.sub(r".*/(boards/)", r"\1", path)

groups = collections.defaultdict(list)
for addr, func, target in sites:
    kind, fn, path = kind_of[addr]
    groups[kind].append((addr, fn, short(path), target if target in panicky else target.split("::")[-1], func))

core = groups.get("core", [])
print(f"{len(sites)} panic call sites in {elf.split('/')[-1]}:")
for kind in sorted(groups, key=lambda k: (k != "core", k)):
    print(f"  {kind}: {len(groups[kind])}")
print()
for kind in sorted(groups, key=lambda k: (k != "core", k)):
    print(f"{kind} ({len(groups[kind])}):")
    for addr, fn, path, target, func in sorted(groups[kind], key=lambda s: (s[2], s[0])):
        print(f"  {path}  {fn}  -> {target}  [0x{addr:x} in {func}]")
    print()
print(f"panic paths originating in the core: {len(core)}")
sys.exit(1 if core else 0)
PY
