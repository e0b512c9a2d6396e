#!/usr/bin/env python3
"""What a switch costs the traffic going through: switchyard against HAProxy's
runtime API, in one run, one worker each, on loopback (compare.py's upstreams:
two nginx, "blue!" and "green").

A load process (asyncio, N keep-alive connections, one request each in flight)
counts answers per 10 ms bucket. Every 500 ms the pool is switched through the
proxy's own mechanism (switchyard's admin API, HAProxy's `set server … weight`);
250 ms after each switch a "no switch" reference point is taken. Every other
switch is probed with fresh connections; the dip is measured on the others. Reported:

- the dip: in the 200 ms after a switch, the fewest answers in one 10 ms bucket,
  as a share of the median bucket of the whole run (median over switches), and
  the same at the reference points (what the load does with no switch at all);
- the first target answer on a fresh connection: from the moment the switch call
  starts, new connections are opened one after another (`Connection: close`)
  until one is answered by the target pool: that time (median, p90);
- the switch call's own duration (median).

`--hogs N` adds N busy loops (plain processes at the default priority) for the
whole run: a host whose cores are all taken, where every thread a switch wakes
has to wait for a core.

Usage:  python3 benches/switch_dip.py --switchyard target/release/switchyard
            [--extra NAME=OTHER_BUILD]... [--seconds 12] [--conns 32] [--rounds 2] [--hogs 0] [--out FILE]
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import HAProxy, Switchyard, ensure_tools, machine, nginx_upstream  # noqa: E402

BUCKET = 0.010
WINDOW = 0.200
PERIOD = 0.500
REQ = b"GET / HTTP/1.1\r\nHost: app\r\n\r\n"


async def _client(port, until, counts):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.monotonic() < until:
        writer.write(REQ)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        b = int(time.monotonic() / BUCKET)
        counts[b] = counts.get(b, 0) + 1
    writer.close()


def load(port, seconds, conns, out):
    """The load process: answers per 10 ms bucket (keyed by monotonic time) to `out`."""
    counts = {}
    until = time.monotonic() + seconds

    async def main():
        await asyncio.gather(*(_client(port, until, counts) for _ in range(conns)))

    asyncio.run(main())
    with open(out, "w") as f:
        json.dump(counts, f)


def fresh_answer(port, deadline=2.0):
    """One GET on a new connection (`Connection: close`): the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def probe(proxy, target_body, t0, result, deadline=2.0):
    """From `t0` (the switch call's start), new connections until the target answers."""
    while time.monotonic() - t0 < deadline:
        try:
            if fresh_answer(proxy.port) == target_body:
                result.append((time.monotonic() - t0) * 1000)
                return
        except OSError:
            pass
    result.append(deadline * 1000)


def run(proxy, seconds, conns, tmp):
    out = os.path.join(tmp, f"counts-{proxy.name}.json")
    lp = subprocess.Popen([sys.executable, __file__, "--load", str(proxy.port), str(seconds), str(conns), out])
    time.sleep(1.0)
    switches, refs, firsts, calls = [], [], [], []
    pool = "blue"
    end = time.monotonic() + seconds - 1.5
    while time.monotonic() < end:
        pool = "green" if pool == "blue" else "blue"
        target = "blue!" if pool == "blue" else "green"
        # Every other switch is probed with fresh connections; the dip is measured on
        # the others (the probe's own connections would be part of it).
        probed = len(calls) % 2 == 0
        t0 = time.monotonic()
        found = []
        th = threading.Thread(target=probe, args=(proxy, target, t0, found))
        if probed:
            th.start()
        proxy.switch(pool)
        calls.append((time.monotonic() - t0) * 1000)
        if probed:
            th.join()
            firsts.extend(found)
        else:
            switches.append(t0)
        time.sleep(max(0.0, t0 + PERIOD / 2 - time.monotonic()))
        refs.append(time.monotonic())
        time.sleep(max(0.0, t0 + PERIOD - time.monotonic()))
    lp.wait()
    with open(out) as f:
        counts = {int(k): v for k, v in json.load(f).items()}
    lo, hi = min(counts), max(counts)
    median = statistics.median(counts.get(b, 0) for b in range(lo + 50, hi - 50))

    def dip(t):
        first = int(t / BUCKET) + 1  # the first whole bucket after t
        return min(counts.get(b, 0) for b in range(first, first + int(WINDOW / BUCKET))) / median

    return {
        "switches": len(calls),
        "dip": statistics.median(dip(t) for t in switches),
        "dip_ref": statistics.median(dip(t) for t in refs),
        "first_p50": statistics.median(firsts),
        "first_p90": sorted(firsts)[int(len(firsts) * 0.9)],
        "call_p50": statistics.median(calls),
        "rate": median / BUCKET,
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        port, seconds, conns, out = sys.argv[2:6]
        return load(int(port), float(seconds), int(conns), out)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switchyard", required=True)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                    help="another switchyard build in the same run (e.g. the one before a change)")
    ap.add_argument("--hogs", type=int, default=0, help="busy loops running beside (a host with no idle core)")
    ap.add_argument("--out")
    args = ap.parse_args()
    builds = {"switchyard": args.switchyard, **dict(e.split("=", 1) for e in args.extra)}
    ensure_tools()
    tmp = tempfile.mkdtemp(prefix="sy-dip-")
    blue, green = nginx_upstream(tmp, "blue!"), nginx_upstream(tmp, "green")
    results = {name: [] for name in [*builds, "haproxy"]}
    # Bounded: each ends on its own after the run's length, and is stopped by its pid below.
    budget = (args.seconds + 5) * args.rounds * len(results) + 60
    hogs = [subprocess.Popen(["timeout", str(int(budget)), "sh", "-c", "while :; do :; done"])
            for _ in range(args.hogs)]
    try:
        for r in range(args.rounds):
            order = list(results) if r % 2 == 0 else list(reversed(results))
            for name in order:
                if name in builds:
                    p = Switchyard(tmp, builds[name], 1, blue.port, green.port, name=name)
                else:
                    p = HAProxy(tmp, 1, blue.port, green.port)
                try:
                    res = run(p, args.seconds, args.conns, tmp)
                finally:
                    p.proc.stop()
                print(f"round {r + 1} {name}: {res}", flush=True)
                results[name].append(res)
    finally:
        for h in hogs:
            h.terminate()
            h.wait()
        blue.stop()
        green.stop()
    lines = [
        f"# A switch under load ({machine()})", "",
        f"`python3 benches/switch_dip.py --switchyard {args.switchyard} "
        f"{''.join(f'--extra {e} ' for e in args.extra)}--seconds {args.seconds:g} "
        f"--conns {args.conns} --rounds {args.rounds}{f' --hogs {args.hogs}' if args.hogs else ''}`: one worker each; "
        f"{f'{args.hogs} busy loops beside; ' if args.hogs else ''}a python asyncio load of "
        f"{args.conns} keep-alive connections; a switch every {PERIOD * 1000:.0f} ms. Medians over rounds.", "",
        "| proxy | switches | load (req/s) | dip after a switch | dip with no switch | first target answer, fresh "
        "connection (p50 / p90 ms) | switch call (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rs in results.items():
        def med(k):
            return statistics.median(x[k] for x in rs)
        lines.append(f"| {name} | {sum(x['switches'] for x in rs)} | {med('rate'):.0f} | {med('dip') * 100:.0f} % "
                     f"| {med('dip_ref') * 100:.0f} % | {med('first_p50'):.2f} / {med('first_p90'):.2f} "
                     f"| {med('call_p50'):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
