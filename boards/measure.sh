#!/usr/bin/env bash
# Measures a full group member on QEMU mps2-an386 (Cortex-M4F) for group
# capacities of 8, 64, 256 and 1,024 leaves (the scenario's group is three quarters
# full) and prints two Markdown tables:
#
# 1. memory: flash (.vector_table + .text + .rodata + .data image), static
#    RAM (.data + .bss) and the peak stack of the member's operations;
# 2. guest instructions (QEMU -icount shift=0, read from SysTick) and peak
#    stack per operation, against the floor: the primitives the operation
#    cannot do without, each at its cost measured alone on the same CPU:
#    the public-key operations and the KDF calls of the key schedule, the
#    secret tree and HPKE (counted by the scenario generator from the tree),
#    and the bytes of message its AEAD, its signature's hash and the
#    transcript hash must run over (`X_bytes`: bytes of the primitive
#    `X_kib`, measured on 1 KiB; from the message's length). See
#    boards/README.md, sixteenth session.
#
# Last, for tools, one line per capacity in the order run (integers, bytes):
#   footprint cap-8: flash F, ram R, stack S, checks N passed M failed
# F is the table's "flash of the member" (flash without the scenario data and
# the Group::EMPTY image), R = .data + .bss, S = the peak stack of the
# member's operations, and the checks are the firmware's closing line.
#
# The firmware is built without the vector checks (feature vector-checks
# off), so flash holds the member, its test harness (semihosting, printing)
# and the embedded scenario data, which the table separates out.
#
# --footprint (CI: test.sh runs `boards/measure.sh --footprint 8 64`) skips the
# primitives firmware and the instruction tables, and checks each capacity
# against its budget in footprint-budget.txt: it fails if flash, ram, stack,
# their sum ram+stack or the Group::EMPTY image is over budget, if fewer checks passed than the budget's count, or if the
# capacity has no budget. In every mode a failed firmware check fails it.
#
# --suite S picks the cipher suites the firmware holds (issue #15): 3 (the
# default: X25519, ChaCha20Poly1305, Ed25519), 2 (P-256, AES-128-GCM, ECDSA
# P-256) or 2+3 (both in the core, the scenario in suite 2). The primitives
# and the floors are those of the scenario's suite. The budget of
# --footprint is suite 3's: --footprint takes no other suite.
#
# A capacity `N+store` (e.g. 64+store) measures the member that keeps its
# group in the flash store (feature reboot: what a device runs, every step
# saved, then a reboot and a reload), with the store's code in its flash and
# the store's buffers in its RAM; its footprint line says `cap-N+store`.
# 1024 and 1024+store measure issue #14's 1,024-leaf member (its tree still
# in RAM: 1 MiB map, not a budget of CI's).
#
# Usage: boards/measure.sh [--footprint] [--suite 3|2|2+3] [capacity...]   (default: 8 64 256)
# Needs qemu-system-arm, arm-none-eabi-size/-nm and python3.
set -euo pipefail
cd "$(dirname "$0")"

mode=full
suite=3
while [ $# -gt 0 ]; do
    case "$1" in
        --footprint) mode=footprint; shift ;;
        --suite) suite="${2:-}"; shift 2 || { echo "--suite needs 3, 2 or 2+3" >&2; exit 2; } ;;
        *) break ;;
    esac
done
case "$suite" in
    3) suite_features=suite-3 ;;
    2) suite_features=suite-2 ;;
    2+3) suite_features=suite-2,suite-3 ;;
    *) echo "--suite: expected 3, 2 or 2+3, got '$suite'" >&2; exit 2 ;;
esac
if [ "$mode" = footprint ] && [ "$suite" != 3 ]; then
    echo "--footprint: the budget (footprint-budget.txt) is suite 3's; run without --suite" >&2
    exit 2
fi
echo "cipher suites in the firmware: $suite (features $suite_features)" >&2
caps=("$@")
[ ${#caps[@]} -gt 0 ] || caps=(8 64 256)
target=thumbv7em-none-eabihf
pkg=board-mps2-an386
# Firmware lands in target/, or in $CARGO_TARGET_DIR when that is set.
elf=${CARGO_TARGET_DIR:-target}/$target/release/$pkg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # features outfile
    set -- "$1,$suite_features" "$2"
    nice -n 10 cargo build --release -q -p "$pkg" --target "$target" --no-default-features --features "$1" >&2
    # A firmware with a failed check exits 1 but still ends with `N passed,
    # M failed`: the tables show it and the verdict fails. A run without
    # that line (timeout, fault) stops here.
    local rc=0
    timeout 900 cargo run --release -q -p "$pkg" --target "$target" --no-default-features --features "$1" >"$2" || rc=$?
    if ! tail -n 1 "$2" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
        echo "FAIL: firmware ($1): exit status $rc and no closing \"N passed, M failed\" line; its last lines:" >&2
        tail -n 5 "$2" >&2
        exit 1
    fi
}

# Each capacity's core keeps private path keys for just the levels of its
# tree (MLS_NOSTD_MAX_TREE_DEPTH: 3 for 8 leaves, 6 for 64, 8 for 256; the
# boards' default in .cargo/config.toml is 10), as a firmware built for
# one group size would: 10 levels cost cap-8 1.4 KiB more RAM. The
# variable is the environment's, so it overrides .cargo/config.toml.
tree_depth() { # leaves -> the levels of a tree of that many leaves
    local d=0
    while [ $((1 << d)) -lt "$1" ]; do d=$((d + 1)); done
    echo "$d"
}
if [ "$mode" = full ]; then
    echo "primitives (cap-8 build, feature primitives) ..." >&2
    MLS_NOSTD_MAX_TREE_DEPTH=$(tree_depth 8)
    export MLS_NOSTD_MAX_TREE_DEPTH
    run "cap-8,primitives" "$work/primitives.txt"
fi
for cap in "${caps[@]}"; do
    # `64+store`: the member keeps its group in the flash store, as a device
    # does (feature reboot: every step saved, then a reboot and a reload).
    leaves=${cap%+store}
    case "$cap" in
        *[!0-9]*) [ "$cap" = "$leaves+store" ] && [ -n "$leaves" ] && [ -z "${leaves//[0-9]/}" ] \
            || { echo "capacity: expected N or N+store, got '$cap'" >&2; exit 2; }
            features="cap-$leaves,reboot" ;;
        *) features="cap-$cap" ;;
    esac
    MLS_NOSTD_MAX_TREE_DEPTH=$(tree_depth "$leaves")
    export MLS_NOSTD_MAX_TREE_DEPTH
    echo "capacity $cap (tree depth $MLS_NOSTD_MAX_TREE_DEPTH) ..." >&2
    run "$features" "$work/run-$cap.txt"
    arm-none-eabi-size -A "$elf" >"$work/size-$cap.txt"
    arm-none-eabi-nm -S --size-sort "$elf" >"$work/nm-$cap.txt"
    arm-none-eabi-nm -S -C --size-sort "$elf" >"$work/nmc-$cap.txt"
done

python3 - "$mode" "$work" footprint-budget.txt "$suite" "${caps[@]}" <<'EOF'
import re, sys
mode, work, budget_file, suite, caps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
prim = {}
if mode == "full":
    for line in open(f"{work}/primitives.txt"):
        m = re.match(r"primitive (\w+): (\d+) instructions, stack peak (\d+)", line)
        if m: prim[m[1]] = int(m[2])
ops = ["keypackage", "join", "process-commit-path", "create-commit-path", "protect-1k", "unprotect-1k"]
names = {"keypackage": "KeyPackage generation", "join": "join from Welcome",
         "process-commit-path": "process a Commit with path", "create-commit-path": "create a Commit with path",
         "protect-1k": "protect 1 KiB", "unprotect-1k": "unprotect 1 KiB"}
# A count `X_bytes: n` is n bytes of the primitive `X_kib` (measured on 1,024).
unit = lambda k: prim[k[:-len("_bytes")] + "_kib"] / 1024 if k.endswith("_bytes") else prim[k]
mem, cost = {}, {}
for cap in caps:
    size = {}
    for line in open(f"{work}/size-{cap}.txt"):
        f = line.split()
        if len(f) >= 2 and f[0].startswith("."): size[f[0]] = int(f[1])
    run = open(f"{work}/run-{cap}.txt").read()
    m = re.search(r"member: capacity (\d+) leaves, (\d+) members, group state (\d+) bytes, scratch (\d+) bytes, embedded test data (\d+) bytes", run)
    if not m: sys.exit(f"FAIL: cap-{cap}: the firmware printed no `member: capacity ...` line")
    members, group, scratch, data = int(m[2]), int(m[3]), int(m[4]), int(m[5])
    # The firmware's last line (run() made sure it is `N passed, M failed`).
    closing = re.fullmatch(r"(\d+) passed, (\d+) failed", run.rstrip("\n").rsplit("\n", 1)[-1])
    # Group::EMPTY's image: the .rodata object as large as the group state,
    # copied into the .bss slot at start-up (see board_firmware::cell).
    empty = 0
    for line in open(f"{work}/nm-{cap}.txt"):
        f = line.split()
        if len(f) == 4 and f[2] in "rR" and int(f[1], 16) == group: empty = group
    flash = size.get(".vector_table", 0) + size.get(".text", 0) + size.get(".rodata", 0) + size.get(".data", 0)
    ram = size.get(".data", 0) + size.get(".bss", 0)
    stacks, c = [], {}
    for line in run.splitlines():
        m = re.match(r"member\[\d+\] (.*): (\d+) instructions, stack peak (\d+) bytes(?: op=(\S+) floor=(\S+))?", line)
        if not m: continue
        stacks.append(int(m[3]))
        if m[4]:
            counts = dict((k, int(v)) for k, v in (kv.split(":") for kv in m[5].split(",")))
            floor = sum(unit(k) * n for k, n in counts.items()) if prim else 0
            c[m[4]] = (int(m[2]), floor, int(m[3]), counts)
    if not stacks: sys.exit(f"FAIL: cap-{cap}: the firmware printed no member step costs")
    cost[cap] = c
    mem[cap] = dict(members=members, flash=flash, text=size.get(".text", 0), rodata=size.get(".rodata", 0),
                    data=data, empty=empty, member_flash=flash - data - empty, ram=ram, group=group,
                    scratch=scratch, stack=max(stacks), passed=int(closing[1]), failed=int(closing[2]))
k = lambda n: f"{n / 1024:.1f} KiB"
M = lambda n: f"{n / 1e6:.2f} M"

def footprint_lines():
    # Last on stdout, one per capacity in the order run: for tools.
    print()
    for cap in caps:
        x = mem[cap]
        print(f"footprint cap-{cap}: flash {x['member_flash']}, ram {x['ram']}, stack {x['stack']}, "
              f"checks {x['passed']} passed {x['failed']} failed")
    sys.stdout.flush()

def verdict():
    # Exit status 1 if a firmware check failed; with --footprint also if a
    # capacity has no budget or is over it. Messages go to stderr.
    bad = [f"FAIL cap-{c}: {mem[c]['failed']} firmware checks failed" for c in caps if mem[c]["failed"]]
    if mode == "footprint":
        budget = {}
        try: lines = open(budget_file).read().splitlines()
        except OSError as e: sys.exit(f"FAIL: no budget: {e}")
        for n, line in enumerate(lines, 1):
            f = line.split("#", 1)[0].split()
            if not f: continue
            if len(f) != 3 or f[1] not in ("flash", "ram", "stack", "ram+stack", "empty", "checks") or not f[2].isdigit():
                sys.exit(f"FAIL: {budget_file}:{n}: expected `cap-N flash|ram|stack|ram+stack|empty|checks NUMBER`, got: {line.strip()}")
            budget[(f[0], f[1])] = int(f[2])
        for cap in caps:
            x, key = mem[cap], f"cap-{cap}"
            missing = [q for q in ("flash", "ram", "stack", "ram+stack", "empty", "checks") if (key, q) not in budget]
            if missing:
                bad.append(f"FAIL budget {key}: no budget for {', '.join(missing)} in boards/{budget_file}")
                continue
            quantities = (("flash", x["member_flash"]), ("ram", x["ram"]), ("stack", x["stack"]),
                          ("ram+stack", x["ram"] + x["stack"]), ("empty", x["empty"]))
            for q, have in quantities:
                limit = budget[(key, q)]
                line = f"{key}: {q} {have} bytes, budget {limit} ({have - limit:+d})"
                if have > limit: bad.append("FAIL budget " + line + ": over budget (boards/footprint-budget.txt)")
                else: print(f"budget {line}: ok", file=sys.stderr)
            least = budget[(key, "checks")]
            if x["passed"] < least: bad.append(f"FAIL budget {key}: {x['passed']} checks passed, expected at least {least}")
            else: print(f"budget {key}: {x['passed']} checks passed, at least {least}: ok", file=sys.stderr)
    for b in bad: print(b, file=sys.stderr)
    sys.exit(1 if bad else 0)

# Flash of the primitives' crates, from the symbols (demangled) in .text
# and .rodata: code inlined into a caller of another crate counts there, so
# a present family is approximate; an absent one is exactly 0 (no symbol).
families = [
    ("X25519 / Ed25519 (curve25519-dalek, x25519-dalek, ed25519-dalek)", r"curve25519_dalek|x25519_dalek|ed25519_dalek|\bed25519::"),
    ("P-256 / ECDSA (p256, primeorder, ecdsa, elliptic-curve, rfc6979, crypto-bigint, der)", r"\bp256::|primeorder::|\becdsa::|elliptic_curve::|rfc6979::|crypto_bigint::|\bder::"),
    ("AES-128-GCM (aes, aes-gcm, ghash, polyval)", r"\baes::|aes_gcm::|ghash::|polyval::"),
    ("ChaCha20Poly1305 (chacha20, poly1305, chacha20poly1305)", r"chacha20|poly1305::"),
    ("SHA-2 (sha2)", r"\bsha2::"),
]
fam = {}
for cap in caps:
    fam[cap] = [0] * len(families)
    for line in open(f"{work}/nmc-{cap}.txt"):
        f = line.split(None, 3)
        if len(f) < 4 or f[2] not in "tTrR": continue
        for i, (_, rx) in enumerate(families):
            if re.search(rx, f[3]):
                fam[cap][i] += int(f[1], 16)
                break

print(f"Cipher suites in the firmware: {suite}\n")
print("Memory (bytes; KiB = 1024 bytes):\n")
print("| capacity (members) | flash | of it: scenario data | of it: Group::EMPTY image | flash of the member | static RAM (.data+.bss) | of it: group state | of it: scratch | peak stack | RAM + stack | checks |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for cap in caps:
    x = mem[cap]
    print(f"| {cap} ({x['members']}) | {k(x['flash'])} | {k(x['data'])} | {k(x['empty'])} | {k(x['member_flash'])} | "
          f"{k(x['ram'])} | {k(x['group'])} | {k(x['scratch'])} | {k(x['stack'])} | {k(x['ram'] + x['stack'])} | "
          f"{x['passed']} passed, {x['failed']} failed |")
print("\nFlash of the primitives' crates (bytes of their symbols; inlined code counts toward its caller; 0 = not linked at all):\n")
print("| crates | " + " | ".join(f"cap {c}" for c in caps) + " |")
print("|---|" + "---|" * len(caps))
for i, (name, _) in enumerate(families):
    print(f"| {name} | " + " | ".join(str(fam[c][i]) for c in caps) + " |")
if mode == "footprint":
    footprint_lines()
    verdict()
print("\nPrimitives alone (guest instructions): " + ", ".join(f"{n} {M(v)}" if v > 1e5 else f"{n} {v / 1e3:.1f} k" for n, v in prim.items()))
print("\nGuest instructions per operation (M = 10^6), floor = primitives it must run, ratio = measured / floor, and peak stack:\n")
print("| operation | " + " | ".join(f"cap {c}: instructions / floor = ratio, stack" for c in caps) + " |")
print("|---|" + "---|" * len(caps))
for op in ops:
    cells = []
    for cap in caps:
        if op not in cost[cap]: cells.append("-"); continue
        n, floor, stack, counts = cost[cap][op]
        cells.append(f"{M(n)} / {M(floor)} = {n / floor:.2f}x, {k(stack)}")
    print(f"| {names[op]} | " + " | ".join(cells) + " |")
print("\nFloors (primitive counts):\n")
for op in ops:
    parts = []
    for cap in caps:
        counts = cost[cap].get(op, (0, 0, 0, {}))[3]
        parts.append(f"cap {cap}: " + " + ".join(f"{v} {n}" for n, v in counts.items() if v))
    print(f"- {names[op]}: " + "; ".join(parts))
footprint_lines()
verdict()
EOF
