#!/usr/bin/env python3
"""Prints the comparison table of bench/run.sh from criterion's estimates
(median per iteration) and the floor counts the bench wrote."""
import json
import os
import sys

home = sys.argv[1]
libs = ["ours", "openmls", "mls-rs"]


def median(group, lib):
    path = os.path.join(home, group, lib, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(ns):
    if ns is None:
        return "—"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


try:
    with open(os.path.join(home, "mls-floor.json")) as f:
        floor_data = json.load(f)
except (OSError, ValueError):
    floor_data = {"cores": 1, "bulk_bytes": 65536, "scenarios": {}}
cores = floor_data["cores"]
bulk = floor_data["bulk_bytes"]
prim = {k: median("e_primitives", k) for k in
        ["sign", "verify", "hpke_seal", "hpke_open", "derive_key_pair", "sha256_64kib", "aead_64kib"]}


def floor(group):
    c = floor_data["scenarios"].get(group)
    if c is None or any(v is None for v in prim.values()):
        return None
    return (c["sign"] * prim["sign"] + c["verify"] * prim["verify"]
            + c["verify_par"] * prim["verify"] / cores
            + c["hpke_seal_par"] * prim["hpke_seal"] / cores
            + c["hpke_open"] * prim["hpke_open"] + c["derive_key_pair"] * prim["derive_key_pair"]
            + c["hash_bytes"] * prim["sha256_64kib"] / bulk + c["aead_bytes"] * prim["aead_64kib"] / bulk)


sizes = [int(s) for s in os.environ.get("MLS_BENCH_SIZES", "2,16,128,1024").split(",") if s.strip()]
big = int(os.environ.get("MLS_BENCH_BIG", "10000"))
rows = []
for n in sizes:
    rows += [(f"a_commit_{n}", f"a. add {n - 1}: Commit + Welcome (N={n})"),
             (f"a_merge_{n}", f"a. add {n - 1}: creator's merge (N={n})"),
             (f"a_join_{n}", f"a. add {n - 1}: join from the Welcome (N={n})")]
for n in sizes:
    for tree in ["full", "sparse"]:
        rows += [(f"b_{tree}_commit_{n}", f"b. {tree} tree N={n}: create Commit with path"),
                 (f"b_{tree}_process_{n}", f"b. {tree} tree N={n}: process + merge it")]
rows += [("c_protect", "c. protect 1 KiB application message"),
         ("c_unprotect", "c. unprotect 1 KiB application message"),
         (f"d_join_{big}", f"d. join from a Welcome, N={big}")]

print(f"| scenario | ours | OpenMLS | mls-rs | OpenMLS/ours | mls-rs/ours | floor | ours/floor |")
print("|---|---|---|---|---|---|---|---|")
for group, label in rows:
    t = {lib: median(group, lib) for lib in libs}
    if all(v is None for v in t.values()):
        continue
    fl = floor(group)
    print(f"| {label} | {fmt(t['ours'])} | {fmt(t['openmls'])} | {fmt(t['mls-rs'])} | "
          f"{ratio(t['openmls'], t['ours'])} | {ratio(t['mls-rs'], t['ours'])} | {fmt(fl)} | {ratio(t['ours'], fl)} |")
names = {"sign": "Ed25519 sign", "verify": "Ed25519 verify", "hpke_seal": "HPKE seal (80 B)",
         "hpke_open": "HPKE open (80 B)", "derive_key_pair": "DeriveKeyPair (X25519)",
         "sha256_64kib": "SHA-256 of 64 KiB", "aead_64kib": "ChaCha20Poly1305 of 64 KiB"}
for k, label in names.items():
    if prim[k] is not None:
        print(f"| e. primitive: {label} | {fmt(prim[k])} | | | | | | |")
print(f"\nMedians per operation; floor = primitives x single-thread cost, independent ones / {cores} cores.")
