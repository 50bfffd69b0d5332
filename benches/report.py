#!/usr/bin/env python3
"""Print the store benchmark table (docs/performance.md) from criterion's saved estimates.

Usage: cargo bench --bench store && python3 benches/report.py [target/criterion]

Each row is one size and kind of data; times are criterion's medians. The three targets of the
store are checked as ratios within the same run:
  dedup hit    <= 1.2 x raw XXH3-128 hashing
  put (new)    >= 70 % of the throughput of raw zstd compression + raw write+fsync
  get          >= 70 % of the throughput of raw zstd decompression + raw hashing
The put target is checked on 64 MiB of compressible data, as the target names it; the get target
on 1 MiB and 64 MiB (at 4 KiB a read is one index lookup, which no raw baseline contains).
"""
import json
import os
import sys

BASE = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
SIZES = ["4KiB", "1MiB", "64MiB"]
KINDS = ["compressible", "random"]
NAMES = ["raw_xxh3_128", "raw_zstd_compress", "raw_zstd_decompress", "raw_write_fsync",
         "put_commit_new", "put_dedup_hit", "get"]


def median_ns(group, name):
    path = os.path.join(BASE, group.replace("/", "_"), name, "new", "estimates.json")
    if not os.path.exists(path):
        path = os.path.join(BASE, *group.split("/"), name, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def fmt(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    print("| data | hash | compress | decompress | write+fsync | put+commit new | dedup hit | get |"
          " dedup/hash (≤1.2) | put vs limit (≥0.70) | get vs limit (≥0.70) |")
    print("|---|" + "---|" * 10)
    failures = 0
    for size in SIZES:
        for kind in KINDS:
            group = f"store/{size}/{kind}"
            t = {n: median_ns(group, n) for n in NAMES}
            dedup = t["put_dedup_hit"] / t["raw_xxh3_128"]
            put = (t["raw_zstd_compress"] + t["raw_write_fsync"]) / t["put_commit_new"]
            get = (t["raw_zstd_decompress"] + t["raw_xxh3_128"]) / t["get"]
            checked = size == "64MiB" and kind == "compressible"
            marks = [
                ok(dedup <= 1.2),
                ok(put >= 0.7) if checked else "",
                ok(get >= 0.7) if size != "4KiB" else "",
            ]
            failures += sum(m == "✗" for m in marks)
            print(f"| {size} {kind} | " + " | ".join(fmt(t[n]) for n in NAMES)
                  + f" | {dedup:.2f} {marks[0]} | {put:.2f} {marks[1]} | {get:.2f} {marks[2]} |")
    print()
    print(f"targets missed: {failures}")


def ok(cond):
    return "✓" if cond else "✗"


if __name__ == "__main__":
    main()
