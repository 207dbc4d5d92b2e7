#!/usr/bin/env bash
# What one member step asks of the flash store, and what each kind of
# request costs in `sequential-storage`'s CRC (its bitwise CRC-32 is most
# of a stored step's overhead: boards/README.md, eighteenth session): runs
# the stored member firmware (feature reboot, as boards/measure.sh N+store)
# under QEMU with gdb breakpoints, and during the HIT-th call of FUNCTION
# prints each `Storage` write (key, length), read and removal of the
# `FlashSplit`, then the counts of the map's operations and the bytes their
# CRCs hashed:
#
#   storage writes 12 reads 1 removes 1 scrubs 0
#   store_item 12 (crc bytes 963), fetch 1 (crc bytes 2016), remove_item 1 (crc bytes 3789), other crc bytes 3789
#
# Each CRC counts to the map operation begun last, or to "other" when a
# `FlashSplit` call has begun none yet (a batch's read-back pass before a
# removal, a load's passes). A record key is `kind slot part/bank index`
# (mls-nostd/src/store/mod.rs): 01 head, 02 a bank's record, 05/06 a secret
# tree's node, 07/08 its index (index >= 0x8000) or a skipped key, 09/0a a
# ratchet-tree node.
#
# Usage: boards/store-ops.sh [--cap N] FUNCTION [HIT]
#   boards/store-ops.sh --cap 1024 'board_member::Device::protect' 1
#   boards/store-ops.sh --cap 64 'board_member::Device::receive' 2
# (boards/profile.sh FUNCTION 0 lists a function's calls.) Builds the
# firmware for the capacity as boards/profile.sh --store does. Needs
# qemu-system-arm, gdb-multiarch and arm-none-eabi binutils. A development
# tool: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")"
cap=64
while [ $# -gt 0 ]; do
    case "$1" in
        --cap) cap="${2:?--cap needs N}"; shift 2 ;;
        *) break ;;
    esac
done
func="${1:?usage: boards/store-ops.sh [--cap N] FUNCTION [HIT]}"
hit="${2:-1}"
source ./member-elf.sh
build_member "$cap" reboot,suite-3
at() { address_of "$1"; }
step=$(at "$func")
[ -n "$step" ] || { echo "no function named '$func' in $elf" >&2; exit 2; }
map='sequential_storage::map::MapStorage<K,S,C>'
split='<mls_nostd::store::flash::FlashSplit<F,_> as mls_nostd::store::Storage>'
store_item=$(at "$map::store_item_inner::{{closure}}")
fetch=$(at "$map::fetch_item_with_location::{{closure}}")
remove_item=$(at "$map::remove_item_inner::{{closure}}")
crc=$(at 'sequential_storage::item::adapted_crc32')
write=$(at "$split::write")
read=$(at "$split::read")
remove=$(at "$split::remove")
scrub=$(at 'mls_nostd::store::flash::Regions<_>::scrub')
for a in "$store_item" "$fetch" "$remove_item" "$crc" "$write" "$read" "$remove" "$scrub"; do
    [ -n "$a" ] || { echo "a store function is missing from $elf (renamed or inlined?)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${qpid:-}" ] && kill "$qpid" 2>/dev/null || true' EXIT
qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -semihosting-config enable=on,target=native \
    -icount shift=0 -kernel "$elf" -S -gdb tcp:127.0.0.1:1235 >"$work/qemu.out" 2>&1 &
qpid=$!
sleep 1
# On a breakpoint: count, note which map operation runs ($op: the CRCs
# that follow are charged to it), print, go on. Arguments (AAPCS): a write
# is (self, key, value ptr, value len); a read returns through r0, so
# (out, self, key, ...); a removal (self, key).
counted() { # ADDRESS COUNTER OP [PRINTF...]
    echo "break *0x$1"
    echo "commands"
    echo "silent"
    echo "set \$$2 = \$$2 + 1"
    echo "set \$op = $3"
    [ $# -gt 3 ] && echo "printf $4"
    echo "continue"
    echo "end"
}
{
    echo "set pagination off"
    echo "target remote 127.0.0.1:1235"
    echo "break *0x$step"
    for _ in $(seq 1 "$hit"); do echo "continue"; done
    echo 'set $ret = $lr & 0xfffffffe'
    echo "delete"
    for v in op n_store n_fetch n_remove crc0 crc1 crc2 crc3 writes reads removes scrubs; do echo "set \$$v = 0"; done
    counted "$store_item" n_store 1
    counted "$fetch" n_fetch 2
    counted "$remove_item" n_remove 3
    counted "$write" writes 0 '"write key %08x len %d\n", $r1, $r3'
    counted "$read" reads 0 '"read key %08x\n", $r2'
    counted "$remove" removes 0 '"remove key %08x\n", $r1'
    echo "break *0x$scrub"
    echo "commands"
    echo "silent"
    echo 'set $scrubs = $scrubs + 1'
    echo 'printf "scrub\n"'
    echo "continue"
    echo "end"
    echo "break *0x$crc"
    echo "commands"
    echo "silent"
    for i in 0 1 2 3; do echo "if \$op == $i"; echo "set \$crc$i = \$crc$i + \$r1"; echo "end"; done
    echo "continue"
    echo "end"
    echo 'break *$ret'
    echo "continue"
    echo 'printf "storage writes %d reads %d removes %d scrubs %d\n", $writes, $reads, $removes, $scrubs'
    echo 'printf "store_item %d (crc bytes %d), fetch %d (crc bytes %d), remove_item %d (crc bytes %d), other crc bytes %d\n", $n_store, $crc1, $n_fetch, $crc2, $n_remove, $crc3, $crc0'
} >"$work/gdb.cmds"
timeout 1800 gdb-multiarch -q -batch -x "$work/gdb.cmds" "$elf" 2>&1 \
    | grep -E '^(write key|read key|remove key|scrub$|storage writes|store_item )' \
    || { echo "nothing logged: is '$func' reached $hit times?" >&2; exit 1; }
