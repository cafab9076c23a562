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


def run(binary, cloud, nodes, pool, latency, timeout, coordination="pinip", limits="none"):
    args = [binary, "simulate", "--cloud", cloud, "--nodes", str(nodes), "--pool", str(pool),
            "--latency-ms", str(latency), "--timeout-s", str(timeout), "--json",
            "--coordination", coordination, "--cloud-limits", limits]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RUST_LOG": "error"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    report = json.loads(out.decode().strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    limits_report = report.get("cloud_limits") or {}
    return {
        "cloud": cloud,
        "coordination": coordination,
        "limits": limits,
        "nodes": nodes,
        "time_to_all_ms": report.get("time_to_all_ms"),
        "floor_ms": limits_report.get("floor_ms"),
        "throttled": limits_report.get("throttled"),
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


NUMERIC = ["assigned", "violations", "time_to_all_ms", "floor_ms", "throttled", "p50_ms",
           "p99_ms", "wall_s", "cpu_s", "cpu_ms_per_node", "rss_mib", "kube_calls_per_node",
           "kube_calls_busiest", "kube_bytes_per_node", "cloud_calls_per_assignment"]


def median_of(runs):
    """One row from several runs of the same point: the median of every number (a run
    that did not assign every node has no time_to_all and is left out of that median)."""
    row = dict(runs[0])
    for key in NUMERIC:
        values = sorted(r[key] for r in runs if r.get(key) is not None)
        row[key] = values[len(values) // 2] if values else None
    row["runs"] = len(runs)
    return row


def matrix(args):
    """--matrix: every cloud x limits x coordination x size, medians of --repeat runs,
    as the Markdown table of docs/benchmarks.md."""
    rows = []
    for cloud in args.clouds.split(","):
        for limits in args.limits.split(","):
            if limits != "none" and cloud not in ("aws", "gcp"):
                continue
            for coordination in args.coordinations.split(","):
                for n in [int(x) for x in args.sizes.split(",")]:
                    runs = [run(args.binary, cloud, n, max(1, int(n * args.pool_factor)),
                                args.latency_ms, args.timeout_s, coordination, limits)
                            for _ in range(args.repeat)]
                    row = median_of(runs)
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    cols = ["cloud", "limits", "coordination", "nodes", "runs", "assigned", "time_to_all_ms",
            "floor_ms", "p50_ms", "p99_ms", "cloud_calls_per_assignment", "throttled",
            "kube_calls_per_node", "kube_bytes_per_node", "cpu_s", "cpu_ms_per_node"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("-" if r.get(c) is None else str(r[c]) for c in cols) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/pinip")
    parser.add_argument("--cloud", default="fake")
    parser.add_argument("--sizes", default="1,30,100,300,1000")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--pool-factor", type=float, default=1.1)
    parser.add_argument("--timeout-s", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--matrix", action="store_true",
                        help="the full table: --clouds x --limits x --coordinations x --sizes")
    parser.add_argument("--clouds", default="aws,gcp")
    parser.add_argument("--limits", default="none,default")
    parser.add_argument("--coordinations", default="pinip,kubeip-lock")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.matrix:
        return matrix(args)
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
