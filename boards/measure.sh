#!/usr/bin/env bash
# Measures a full group member on QEMU mps2-an386 (Cortex-M4F) for group
# capacities of 8, 64 and 256 leaves (the scenario's group is three quarters
# full) and prints two Markdown tables:
#
# 1. memory: flash (.vector_table + .text + .rodata + .data image), static
#    RAM (.data + .bss) and the peak stack of the member's operations;
# 2. guest instructions (QEMU -icount shift=0, read from SysTick) and peak
#    stack per operation, against the floor: the public-key primitives the
#    operation cannot do without (counted by the scenario generator from the
#    tree), each at its cost measured alone on the same CPU.
#
# The firmware is built without the vector checks (feature vector-checks
# off), so flash holds the member, its test harness (semihosting, printing)
# and the embedded scenario data, which the table separates out.
#
# Usage: boards/measure.sh [capacity...]   (default: 8 64 256)
# Needs qemu-system-arm, arm-none-eabi-size/-nm and python3.
set -euo pipefail
cd "$(dirname "$0")"

caps=("$@")
[ ${#caps[@]} -gt 0 ] || caps=(8 64 256)
target=thumbv7em-none-eabihf
pkg=board-mps2-an386
elf=target/$target/release/$pkg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # features outfile
    nice -n 10 cargo build --release -q -p "$pkg" --target "$target" --no-default-features --features "$1" >&2
    timeout 900 cargo run --release -q -p "$pkg" --target "$target" --no-default-features --features "$1" >"$2"
}

echo "primitives (cap-8 build, feature primitives) ..." >&2
run "cap-8,primitives" "$work/primitives.txt"
for cap in "${caps[@]}"; do
    echo "capacity $cap ..." >&2
    run "cap-$cap" "$work/run-$cap.txt"
    arm-none-eabi-size -A "$elf" >"$work/size-$cap.txt"
    arm-none-eabi-nm -S --size-sort "$elf" >"$work/nm-$cap.txt"
done

python3 - "$work" "${caps[@]}" <<'EOF'
import re, sys
work, caps = sys.argv[1], sys.argv[2:]
prim = {}
for line in open(f"{work}/primitives.txt"):
    m = re.match(r"primitive (\w+): (\d+) instructions, stack peak (\d+)", line)
    if m: prim[m[1]] = int(m[2])
ops = ["keypackage", "join", "process-commit-path", "create-commit-path", "protect-1k", "unprotect-1k"]
names = {"keypackage": "KeyPackage generation", "join": "join from Welcome",
         "process-commit-path": "process a Commit with path", "create-commit-path": "create a Commit with path",
         "protect-1k": "protect 1 KiB", "unprotect-1k": "unprotect 1 KiB"}
mem, cost = {}, {}
for cap in caps:
    size = {}
    for line in open(f"{work}/size-{cap}.txt"):
        f = line.split()
        if len(f) >= 2 and f[0].startswith("."): size[f[0]] = int(f[1])
    run = open(f"{work}/run-{cap}.txt").read()
    m = re.search(r"member: capacity (\d+) leaves, (\d+) members, group state (\d+) bytes, scratch (\d+) bytes, embedded test data (\d+) bytes", run)
    members, group, scratch, data = int(m[2]), int(m[3]), int(m[4]), int(m[5])
    closing = re.search(r"^(\d+) passed, (\d+) failed", run, re.M)
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
            floor = sum(prim[k] * n for k, n in counts.items())
            c[m[4]] = (int(m[2]), floor, int(m[3]), counts)
    cost[cap] = c
    mem[cap] = dict(members=members, flash=flash, text=size.get(".text", 0), rodata=size.get(".rodata", 0),
                    data=data, empty=empty, ram=ram, group=group, scratch=scratch, stack=max(stacks),
                    result=f"{closing[1]} passed, {closing[2]} failed" if closing else "no result")
k = lambda n: f"{n / 1024:.1f} KiB"
M = lambda n: f"{n / 1e6:.2f} M"
print("Memory (bytes; KiB = 1024 bytes):\n")
print("| capacity (members) | flash | of it: scenario data | of it: Group::EMPTY image | flash of the member | static RAM (.data+.bss) | of it: group state | of it: scratch | peak stack | RAM + stack | checks |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for cap in caps:
    x = mem[cap]
    member_flash = x["flash"] - x["data"] - x["empty"]
    print(f"| {cap} ({x['members']}) | {k(x['flash'])} | {k(x['data'])} | {k(x['empty'])} | {k(member_flash)} | "
          f"{k(x['ram'])} | {k(x['group'])} | {k(x['scratch'])} | {k(x['stack'])} | {k(x['ram'] + x['stack'])} | {x['result']} |")
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
EOF
