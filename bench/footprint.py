#!/usr/bin/env python3
"""The agent's own footprint (issue 12, item 8): `pinip run` as a process against
`pinip simulate --serve` (EC2 simulator), idle once it holds its address.

It reports, after `--idle-s` seconds of steady state: VmRSS and VmHWM from
/proc/<pid>/status, the CPU the agent spent while idle (utime + stime from
/proc/<pid>/stat), and the cloud and Kubernetes calls the simulator counted while it
was idle (its counters endpoint; every agent of the world, the two in-process ones
included).

    cargo build --release --no-default-features -p pinip   # the image's build
    cp target/release/pinip /tmp/pinip-lean
    cargo build --release                                  # the harness
    python3 bench/footprint.py --agent /tmp/pinip-lean --serve target/release/pinip
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except Exception as e:  # connection refused while starting, a 503 while not ready
        code = getattr(e, "code", None)
        return code, ""


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)


def counters(url):
    _, body = get(url, timeout=5.0)
    return json.loads(body) if body else {}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", required=True, help="the pinip binary to measure (`run`)")
    p.add_argument("--serve", required=True, help="a pinip built with the simulators")
    p.add_argument("--idle-s", type=float, default=60.0)
    p.add_argument("--ready-timeout-s", type=float, default=60.0)
    args = p.parse_args()

    serve = subprocess.Popen(
        [args.serve, "simulate", "--serve", "--json", "--cloud", "aws", "--nodes", "3",
         "--pool", "3", "--agents", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    agent = None
    try:
        info = json.loads(serve.stdout.readline())
        node = info["nodes"][2]["name"]
        admin = f"127.0.0.1:{free_port()}"
        empty = tempfile.NamedTemporaryFile(delete=False)
        empty.close()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "NODE_NAME": node,
            "KUBECONFIG": info["agent_kubeconfig"],
            "LEASE_NAMESPACE": "pinip-system",
            "FILTER": "Name=tag:kubeip,Values=reserved",
            "CLUSTER_NAME": "sim",
            "ADMIN_ADDR": admin,
            "LOG_JSON": "true",
            "RUST_LOG": "info",
            "AWS_ENDPOINT_URL": info["ec2_url"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": empty.name,
            "AWS_SHARED_CREDENTIALS_FILE": empty.name,
        }
        agent = subprocess.Popen([args.agent, "run"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + args.ready_timeout_s
        while get(f"http://{admin}/readyz")[0] != 200:
            if agent.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the agent did not get ready (exit {agent.poll()})")
            time.sleep(0.2)
        # The counters endpoint is a snapshot taken every so often: let it catch up with
        # the assignment before the idle minute starts.
        time.sleep(5)
        ready_at = time.monotonic()
        before = counters(info["counters_url"])
        ticks = cpu_ticks(agent.pid)
        time.sleep(args.idle_s)
        after = counters(info["counters_url"])
        idle_ticks = cpu_ticks(agent.pid) - ticks
        status = proc_status(agent.pid)
        hz = os.sysconf("SC_CLK_TCK")

        def cloud_total(c):
            by_operation = ((c.get("report") or {}).get("cloud_calls") or {}).get("by_operation")
            return sum((by_operation or {}).values())

        def kube_total(c):
            return sum(v.get("requests", 0) for v in (c.get("kube_clients") or {}).values())

        report = {
            "agent": args.agent,
            "idle_s": round(time.monotonic() - ready_at, 1),
            "vm_rss_kib": int(status["VmRSS"].split()[0]),
            "vm_hwm_kib": int(status["VmHWM"].split()[0]),
            "rss_anon_kib": int(status["RssAnon"].split()[0]),
            "rss_file_kib": int(status["RssFile"].split()[0]),
            "threads": int(status["Threads"]),
            "idle_cpu_ms": round(idle_ticks * 1000 / hz),
            # Every agent of the world: the two in-process ones idle too.
            "cloud_calls_while_idle": cloud_total(after) - cloud_total(before),
            "kube_requests_while_idle": kube_total(after) - kube_total(before),
        }
        print(json.dumps(report))
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=30)
        serve.terminate()
        serve.wait(timeout=30)


if __name__ == "__main__":
    main()
