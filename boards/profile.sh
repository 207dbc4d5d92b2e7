#!/usr/bin/env bash
# Where a member step's guest instructions go, per function: runs the
# member-only firmware of boards/measure.sh (mps2-an386) under QEMU with a
# gdb breakpoint on FUNCTION, logs every translation block executed until
# FUNCTION returns (QEMU's `-d exec,nochain`, switched on and off from gdb),
# once per call, and prints for the call chosen (HIT, counted from 1) the
# instructions of each function, with who called the hashes and memcpy.
# Block lengths come from the ELF's disassembly, so the total is an
# estimate (within about 5% of measure.sh's count for the same step).
#
# Usage: boards/profile.sh [--cap N] [--store] FUNCTION [HIT]
#   boards/profile.sh 'board_member::Device::protect' 1      # protect 1 KiB
#   boards/profile.sh --cap 64 'board_member::Device::receive' 5
# With HIT 0 it prints only each call's total, to find the step wanted (the
# scenario's steps are in boards/scenario/src/member.rs). --store profiles
# the member that keeps its group in the flash store (feature reboot, as
# boards/measure.sh N+store), e.g. where a stored step's extra cost goes:
#   boards/profile.sh --cap 64 --store 'board_member::Device::receive' 5
#
# Needs the firmware built for the capacity (boards/measure.sh N builds
# it; this script builds it the same way if it is missing), qemu-system-arm,
# gdb-multiarch (Debian: apt-get install gdb-multiarch), arm-none-eabi
# binutils, c++filt and python3. A development tool: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")"
cap=8
features=suite-3
while [ $# -gt 0 ]; do
    case "$1" in
        --cap) cap="${2:?--cap needs N}"; shift 2 ;;
        --store) features=reboot,suite-3; shift ;;
        *) break ;;
    esac
done
func="${1:?usage: boards/profile.sh [--cap N] [--store] FUNCTION [HIT]}"
hit="${2:-1}"
source ./member-elf.sh
build_member "$cap" "$features"
addr=$(address_of "$func")
[ -n "$addr" ] || { echo "no function named '$func' in $elf" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${qpid:-}" ] && kill "$qpid" 2>/dev/null || true' EXIT
qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -semihosting-config enable=on,target=native \
    -icount shift=0 -kernel "$elf" -S -gdb tcp:127.0.0.1:1234 -D "$work/none.log" >"$work/qemu.out" 2>&1 &
qpid=$!
sleep 1
calls=$([ "$hit" = 0 ] && echo 32 || echo "$hit")
{
    echo "set pagination off"
    echo "target remote 127.0.0.1:1234"
    echo "break *0x$addr"
    for i in $(seq 1 "$calls"); do
        echo "continue"
        echo "monitor logfile $work/call-$i.log"
        echo "monitor log exec,nochain"
        echo "finish"
        echo "monitor log none"
    done
} >"$work/gdb.cmds"
timeout 900 gdb-multiarch -q -batch -x "$work/gdb.cmds" "$elf" >"$work/gdb.out" 2>&1 || true

python3 - "$elf" "$work" "$hit" <<'EOF'
import bisect, collections, glob, re, subprocess, sys
elf, work, hit = sys.argv[1], sys.argv[2], int(sys.argv[3])
insns = []  # (address, ends a block)
for line in subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", elf], capture_output=True, text=True).stdout.splitlines():
    m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
    if not m: continue
    op, args = m.group(2), m.group(3).split(";")[0]
    ends = (op.startswith(("b", "cbz", "cbnz", "tb")) and not op.startswith(("bic", "bfc", "bfi", "bkpt"))) \
        or ("pc" in args and op.startswith(("pop", "ldm", "ldr", "mov", "add"))) or op.startswith("svc")
    insns.append((int(m.group(1), 16), ends))
addrs = [a for a, _ in insns]
def load(path):
    seq = []
    for line in open(path):
        m = re.match(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] (\S+)", line)
        if m: seq.append((int(m.group(1), 16), m.group(2)))
    return seq
def lengths(seq):
    starts = sorted({pc for pc, _ in seq})
    out = {}
    for pc in starts:
        i, j = bisect.bisect_left(addrs, pc), bisect.bisect_right(starts, pc)
        nxt, n = (starts[j] if j < len(starts) else 1 << 40), 0
        while i < len(insns):
            a, ends = insns[i]
            if a >= nxt and n: break
            n += 1
            if ends: break
            i += 1
        out[pc] = max(n, 1)
    return out
files = sorted(glob.glob(f"{work}/call-*.log"), key=lambda f: int(re.search(r"call-(\d+)", f).group(1)))
files = [f for f in files if open(f).read(1)]
if not files: sys.exit("no call logged: is the function reached? (gdb's output is lost with the work directory)")
if hit == 0:
    for f in files:
        seq = load(f); ln = lengths(seq)
        number = re.search(r"call-(\d+)", f).group(1)
        print(f"call {number}: ~{sum(ln[pc] for pc, _ in seq)} instructions")
    sys.exit(0)
if hit > len(files): sys.exit(f"only {len(files)} calls were logged")
seq = load(files[hit - 1]); ln = lengths(seq)
names = sorted({s for _, s in seq})
dem = dict(zip(names, subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")))
clean = lambda s: re.sub(r"::h[0-9a-f]{16}$", "", dem.get(s, s))
per = collections.Counter()
for pc, s in seq: per[clean(s)] += ln[pc]
total = sum(per.values())
print(f"call {hit}: ~{total} instructions")
for name, n in per.most_common(30): print(f"{n:10d} {100 * n / total:5.1f}%  {name[:120]}")
# Who calls the hashes and the copies (the block before each entry).
# A run of blocks in the target counts, with its instructions, to the
# function before it.
for target in ("compress256", "compress512", "mem::memcpy", "__aeabi_memcpy", "__aeabi_memclr"):
    calls, cost, prev, caller = collections.Counter(), collections.Counter(), None, None
    for pc, s in seq:
        name = clean(s)
        if target in name:
            if prev is not None and target not in prev: caller = prev; calls[caller] += 1
            if caller is not None: cost[caller] += ln[pc]
        prev = name
    if calls:
        print(f"callers of {target}: " + ", ".join(f"{c[:60]} x{calls[c]} ({n} insns)" for c, n in cost.most_common(6)))
EOF
