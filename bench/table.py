#!/usr/bin/env python3
"""Prints the comparison table of bench/run.sh from criterion's estimates
(median per iteration), the floor counts and the peak heap the bench wrote;
writes the same rows as JSON (argument 2) and draws time against group size
as an SVG (argument 3). Arguments 4 and 5: the load average at the start
and the end of the run."""
import json
import os
import sys

home = sys.argv[1]
json_out = sys.argv[2] if len(sys.argv) > 2 else None
svg_out = sys.argv[3] if len(sys.argv) > 3 else None


def number(i):
    try:
        return float(sys.argv[i])
    except (IndexError, ValueError):
        return None


load = {"start": number(4), "end": number(5)}
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
try:
    with open(os.path.join(home, "mls-peak.json")) as f:
        peaks = json.load(f)
except (OSError, ValueError):
    peaks = {}
cores = floor_data["cores"]
bulk = floor_data["bulk_bytes"]
prim = {k: median("e_primitives", k) for k in
        ["sign", "verify", "verify_batch", "hpke_seal", "hpke_open", "derive_key_pair", "sha256_64kib", "sha512_64kib",
         "aead_64kib", "aead_1kib"]}
batch = floor_data.get("batch", 256)
# Measured batch costs by size, a single verification as the batch of one:
# a batch of k costs what it costs at k (linear between measured sizes), not
# k / batch of the largest batch (which no small batch reaches).
batch_points = [(1, prim["verify"])] + [(k, median("e_primitives", f"verify_batch_{k}"))
                                        for k in floor_data.get("small_batches", [])] + [(batch, prim["verify_batch"])]
batch_points = [(k, v) for k, v in batch_points if v is not None]


def batch_cost(k):
    """Floor of checking k signatures on one core, in batches of at most `batch`."""
    full, rest = divmod(k, batch)
    cost = full * prim["verify_batch"]
    if rest:
        lo = max(p for p in batch_points if p[0] <= rest)
        hi = min((p for p in batch_points if p[0] >= rest), default=lo)
        cost += lo[1] if hi[0] == lo[0] else lo[1] + (hi[1] - lo[1]) * (rest - lo[0]) / (hi[0] - lo[0])
    return cost


# What an AEAD call costs beyond its bytes (key setup, tag): from the 1 KiB
# call, less 1 KiB at the 64 KiB rate.
aead_call = max(0.0, prim["aead_1kib"] - 1024 * prim["aead_64kib"] / bulk) \
    if prim["aead_1kib"] is not None and prim["aead_64kib"] is not None else 0.0


def floor(group):
    c = floor_data["scenarios"].get(group)
    if c is None or any(v is None for k, v in prim.items() if k not in ("sha512_64kib", "aead_1kib")):
        return None
    # Independent items spread over the cores: ceil(n / cores) each (one
    # seal cannot be split between two cores).
    def par(n):
        return -(-n // cores)

    return (c["sign"] * prim["sign"] + c["verify"] * prim["verify"]
            + par(c["verify_par"]) * prim["verify"]
            + batch_cost(par(c.get("verify_batch_par", 0)))
            + par(c["hpke_seal_par"]) * prim["hpke_seal"]
            + c["hpke_open"] * prim["hpke_open"] + c["derive_key_pair"] * prim["derive_key_pair"]
            + c["hash_bytes"] * prim["sha256_64kib"] / bulk
            + c.get("hash512_bytes", 0) * (prim["sha512_64kib"] or prim["sha256_64kib"]) / bulk
            + c["aead_bytes"] * prim["aead_64kib"] / bulk
            + c.get("aead_calls", 0) * aead_call)


sizes = [int(s) for s in os.environ.get("MLS_BENCH_SIZES", "2,16,128,1024").split(",") if s.strip()]
bigs = [int(s) for s in os.environ.get("MLS_BENCH_BIG", "10000").split(",") if s.strip()]
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
         ("c_unprotect", "c. unprotect 1 KiB application message")]
for big in bigs:
    rows += [(f"d_join_{big}", f"d. join from a Welcome, N={big}"),
             (f"b_sparse_commit_{big}", f"d. sparse tree N={big}: create Commit with path"),
             (f"b_sparse_process_{big}", f"d. sparse tree N={big}: process + merge it"),
             (f"b_full_commit_{big}", f"f. full tree N={big}: create Commit with path"),
             (f"b_full_process_{big}", f"f. full tree N={big}: process + merge it")]

def fmt_bytes(b):
    if b is None:
        return "—"
    if b >= 1 << 20:
        return f"{b / (1 << 20):.1f} MiB"
    if b >= 1 << 10:
        return f"{b / (1 << 10):.1f} KiB"
    return f"{b} B"


print("| scenario | ours | OpenMLS | mls-rs | OpenMLS/ours | mls-rs/ours | floor | ours/floor | peak heap ours / OpenMLS / mls-rs |")
print("|---|---|---|---|---|---|---|---|---|")
json_rows = []
for group, label in rows:
    t = {lib: median(group, lib) for lib in libs}
    if all(v is None for v in t.values()):
        continue
    fl = floor(group)
    pk = {lib: peaks.get(group, {}).get(lib) for lib in libs}
    print(f"| {label} | {fmt(t['ours'])} | {fmt(t['openmls'])} | {fmt(t['mls-rs'])} | "
          f"{ratio(t['openmls'], t['ours'])} | {ratio(t['mls-rs'], t['ours'])} | {fmt(fl)} | {ratio(t['ours'], fl)} | "
          f"{fmt_bytes(pk['ours'])} / {fmt_bytes(pk['openmls'])} / {fmt_bytes(pk['mls-rs'])} |")
    json_rows.append({"scenario": group, "label": label,
                      "ours_ns": t["ours"], "openmls_ns": t["openmls"], "mlsrs_ns": t["mls-rs"], "floor_ns": fl,
                      "ours_peak_bytes": pk["ours"], "openmls_peak_bytes": pk["openmls"], "mlsrs_peak_bytes": pk["mls-rs"]})
names = {"sign": "Ed25519 sign", "verify": "Ed25519 verify",
         "verify_batch": f"Ed25519 verify, a batch of {batch}", "hpke_seal": "HPKE seal (80 B)",
         "hpke_open": "HPKE open (80 B)", "derive_key_pair": "DeriveKeyPair (X25519)",
         "sha256_64kib": "SHA-256 of 64 KiB", "sha512_64kib": "SHA-512 of 64 KiB",
         "aead_64kib": "ChaCha20Poly1305 of 64 KiB", "aead_1kib": "ChaCha20Poly1305 of 1 KiB"}
for k, label in names.items():
    if prim[k] is not None:
        print(f"| e. primitive: {label} | {fmt(prim[k])} | | | | | | | |")
    if k == "verify":
        for size, v in batch_points[1:-1]:
            print(f"| e. primitive: Ed25519 verify, a batch of {size} | {fmt(v)} | | | | | | | |")
print(f"\nMedians per operation; floor = primitives x single-thread cost (k signatures checked in a batch on"
      f" one core: a batch of k's measured cost, linear between the sizes measured, in batches of at most {batch}),"
      f" n independent ones as ceil(n / {cores}) on {cores} cores;"
      f" peak heap = the most an operation allocated above the heap it started with (ours keeps its group in a slot"
      f" allocated before). Load average (1 min): {load['start']} at the start, {load['end']} at the end.")

if json_out:
    os.makedirs(os.path.dirname(json_out) or ".", exist_ok=True)
    with open(json_out, "w") as f:
        json.dump({"load": load, "rows": json_rows}, f, indent=1)
    print(f"rows: {json_out}", file=sys.stderr)


def panels():
    """(title, {series: [(n, ns)]}) per scenario family, for the picture."""
    fams = [("add N-1: Commit + Welcome", "a_commit_{}"), ("join from the Welcome", "a_join_{}"),
            ("full tree: create Commit with path", "b_full_commit_{}"),
            ("full tree: process Commit with path", "b_full_process_{}"),
            ("sparse tree: create Commit with path", "b_sparse_commit_{}"),
            ("sparse tree: process Commit with path", "b_sparse_process_{}")]
    out = []
    for title, pat in fams:
        is_join = pat == "a_join_{}"
        ns = sorted(set(sizes + (bigs if pat != "a_commit_{}" else [])))
        series = {}
        for n in ns:
            # The join of scenario d is the same operation at its size.
            group = f"d_join_{n}" if is_join and n in bigs and n > 1024 else pat.format(n)
            for lib in libs:
                v = median(group, lib)
                if v is not None:
                    series.setdefault(lib, []).append((n, v))
            f = floor(group)
            # The floor only where a library was measured.
            if f is not None and any(median(group, lib) is not None for lib in libs):
                series.setdefault("floor", []).append((n, f))
        if series:
            out.append((title, series))
    return out


def svg(path):
    import math
    colors = {"ours": "#c0392b", "openmls": "#2471a3", "mls-rs": "#229954", "floor": "#7f8c8d"}
    names = {"ours": "mls-nostd", "openmls": "OpenMLS", "mls-rs": "mls-rs", "floor": "crypto floor"}
    ps = panels()
    if not ps:
        return
    pw, ph, cols = 330, 240, 3
    rows_n = (len(ps) + cols - 1) // cols
    width, height = pw * cols + 20, ph * rows_n + 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="16" font-size="13">Time per operation against group size (log-log), cipher suite 3;'
             f' load average {load["start"]} to {load["end"]}</text>']
    lx = 10
    for lib in ["ours", "openmls", "mls-rs", "floor"]:
        dash = ' stroke-dasharray="4 3"' if lib == "floor" else ""
        parts.append(f'<line x1="{lx}" y1="30" x2="{lx + 20}" y2="30" stroke="{colors[lib]}" stroke-width="2"{dash}/>'
                     f'<text x="{lx + 24}" y="33">{names[lib]}</text>')
        lx += 110
    for i, (title, series) in enumerate(ps):
        ox, oy = 10 + (i % cols) * pw, 45 + (i // cols) * ph
        x0, y0, w, h = ox + 50, oy + 20, pw - 70, ph - 55
        xs = [n for pts in series.values() for n, _ in pts]
        ys = [v for pts in series.values() for _, v in pts]
        lx0, lx1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
        ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        lx1, ly1 = max(lx1, lx0 + 1), max(ly1, ly0 + 1)

        def X(n):
            return x0 + (math.log10(n) - lx0) / (lx1 - lx0) * w

        def Y(v):
            return y0 + h - (math.log10(v) - ly0) / (ly1 - ly0) * h

        parts.append(f'<text x="{ox + 50}" y="{oy + 12}" font-size="11">{title}</text>')
        parts.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
        for e in range(lx0, lx1 + 1):
            parts.append(f'<line x1="{X(10 ** e):.1f}" y1="{y0}" x2="{X(10 ** e):.1f}" y2="{y0 + h}" stroke="#eee"/>'
                         f'<text x="{X(10 ** e):.1f}" y="{y0 + h + 12}" text-anchor="middle">{10 ** e:g}</text>')
        for e in range(ly0, ly1 + 1):
            parts.append(f'<line x1="{x0}" y1="{Y(10 ** e):.1f}" x2="{x0 + w}" y2="{Y(10 ** e):.1f}" stroke="#eee"/>'
                         f'<text x="{x0 - 4}" y="{Y(10 ** e) + 3:.1f}" text-anchor="end">{fmt(10 ** e)}</text>')
        parts.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 25}" text-anchor="middle">members</text>')
        for lib, pts in series.items():
            pts = sorted(pts)
            dash = ' stroke-dasharray="4 3"' if lib == "floor" else ""
            line = " ".join(f"{X(n):.1f},{Y(v):.1f}" for n, v in pts)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colors[lib]}" stroke-width="1.8"{dash}/>')
            for n, v in pts:
                parts.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="2.2" fill="{colors[lib]}"/>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")
    print(f"picture: {path}", file=sys.stderr)


if svg_out:
    svg(svg_out)
