#!/usr/bin/env python3
"""Scale benchmark: `pinip simulate` at growing node counts, one process per size.

For each size it records what the harness prints (time to address p50/p99, Kubernetes
requests and response bytes per node) and what the process cost (user + sys CPU from
wait4, peak RSS), then prints one table and, with --json, one JSON line per size.

    cargo build --release
    python3 bench/scale.py --cloud fake --sizes 30,100,300,1000 --latency-ms 100

The floor of issue 12: on a shared 2-core machine the harness's own CPU delays every
agent, so p99 at N nodes is compared with p99 at 1 node + 1.25 x (CPU seconds / 2).
Numbers are from one run on a noisy shared machine: quote medians and ratios.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time


def run(binary, cloud, nodes, pool, latency, timeout):
    args = [binary, "simulate", "--cloud", cloud, "--nodes", str(nodes), "--pool", str(pool),
            "--latency-ms", str(latency), "--timeout-s", str(timeout), "--json"]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RUST_LOG": "error"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    report = json.loads(out.decode().strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "cloud": cloud,
        "nodes": nodes,
        "assigned": report["assigned"],
        "violations": len(report["violations"]),
        "p50_ms": report["time_to_address_ms"]["p50"],
        "p99_ms": report["time_to_address_ms"]["p99"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_node": round(cpu * 1000 / nodes, 1),
        "rss_mib": round(usage.ru_maxrss / 1024, 1),
        "kube_calls_per_node": report["kube_calls"]["per_node"],
        "kube_calls_busiest": report["kube_calls"]["per_node_max"],
        "kube_bytes_per_node": report["kube_bytes"]["per_node"],
        "cloud_calls_per_assignment": report["cloud_calls"]["per_assignment"],
        "exit": os.waitstatus_to_exitcode(status),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/pinip")
    parser.add_argument("--cloud", default="fake")
    parser.add_argument("--sizes", default="1,30,100,300,1000")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--pool-factor", type=float, default=1.1)
    parser.add_argument("--timeout-s", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        row = run(args.binary, args.cloud, n, max(1, int(n * args.pool_factor)),
                  args.latency_ms, args.timeout_s)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{n} nodes done: p99 {row['p99_ms']} ms, {row['cpu_ms_per_node']} ms CPU/node",
                  file=sys.stderr, flush=True)
    single = next((r for r in rows if r["nodes"] == 1), None)
    cols = ["nodes", "assigned", "p50_ms", "p99_ms", "cpu_s", "cpu_ms_per_node", "rss_mib",
            "kube_calls_per_node", "kube_calls_busiest", "kube_bytes_per_node"]
    print(" | ".join(cols) + (" | floor_ms" if single else ""))
    for r in rows:
        line = " | ".join(str(r[c]) for c in cols)
        if single:
            floor = single["p99_ms"] + 1.25 * r["cpu_s"] / 2 * 1000
            line += f" | {floor:.0f}"
        print(line)


if __name__ == "__main__":
    main()
