#!/usr/bin/env python3
"""System calls per proxied request on the worker thread, for one or more builds.

Each build runs with one worker in front of compare.py's nginx upstream; `perf
stat` counts the worker thread's write, recvfrom, sendto, writev and epoll_wait
calls while `wrk -t1 -c64` loads it for a few seconds. Builds run in alternating
rounds; per build the median per-request count over rounds is reported.

Why: a syscall per request costs ~1 µs of a ~9 µs request here, so the counts
show what a change to the I/O path did (the draining read took one recvfrom away;
a timer kept due on each worker took the eventfd writes tokio made to wake its
own timer driver).

Usage:  python3 benches/worker_syscalls.py BUILD [BUILD ...] [--seconds 6] [--rounds 2]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Switchyard, ensure_tools, nginx_upstream  # noqa: E402

CALLS = ["write", "recvfrom", "sendto", "writev", "epoll_wait"]


def worker_tid(pid):
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/comm") as f:
            if f.read().startswith("switchyard-w"):
                return t
    raise RuntimeError("no worker thread found")


def measure(binary, tmp, upstream, seconds):
    p = Switchyard(tmp, binary, 1, upstream.port, upstream.port, name=os.path.basename(binary))
    try:
        events = ",".join(f"syscalls:sys_enter_{c}" for c in CALLS)
        stat = subprocess.Popen(["perf", "stat", "-x,", "-e", events, "-t", worker_tid(p.proc.p.pid)],
                                stderr=subprocess.PIPE, text=True)
        out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", f"http://127.0.0.1:{p.port}/"],
                             capture_output=True, text=True, check=True).stdout
        stat.send_signal(2)
        err = stat.communicate()[1]
    finally:
        p.proc.stop()
    requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    counts = {}
    for line in err.strip().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit():
            counts[fields[2].rsplit("sys_enter_", 1)[-1]] = int(fields[0]) / requests
    return requests / seconds, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    ensure_tools()
    tmp = tempfile.mkdtemp(prefix="sy-sys-")
    upstream = nginx_upstream(tmp, "blue!")
    results = {b: [] for b in args.builds}
    try:
        for _ in range(args.rounds):
            for b in args.builds:
                results[b].append(measure(b, tmp, upstream, args.seconds))
    finally:
        upstream.stop()
    print(f"worker-thread system calls per request (wrk -t1 -c64, {args.seconds} s, median of {args.rounds} rounds)\n")
    print("| build | req/s | " + " | ".join(CALLS) + " |")
    print("|---|---|" + "---|" * len(CALLS))
    for b, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cells = [f"{statistics.median(c.get(k, 0.0) for _, c in runs):.3f}" for k in CALLS]
        print(f"| {b} | {rate:,.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
