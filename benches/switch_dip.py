#!/usr/bin/env python3
"""What a switch costs the traffic going through: switchyard against HAProxy's
runtime API, in one run, one worker each, on loopback (compare.py's upstreams:
two nginx, "blue!" and "green"). HAProxy's runtime API is driven over TCP, as
switchyard's admin API is (`--haproxy-api unix`: its unix socket, cheaper for the
client).

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

Then every probed switch of every round pooled: each proxy's median first target
answer, and its difference to HAProxy's with a bootstrap 95 % interval (the round
medians above move by 0.2 ms from round to round; the pooled interval says whether
a difference of that size is there at all).

`--rate R` paces the load to R requests a second in all, for every proxy alike.
Unpaced, each proxy gets as much load as it answers: a faster proxy then runs on
a busier host (more load-generator and upstream CPU), which is felt by every
thread a switch wakes and by the probes.

`--hogs N` adds N busy loops (plain processes at the default priority) for the
whole run: a host whose cores are all taken, where every thread a switch wakes
has to wait for a core.

Usage:  python3 benches/switch_dip.py --switchyard target/release/switchyard
            [--extra NAME=OTHER_BUILD]... [--seconds 12] [--conns 32] [--rate 0] [--rounds 2] [--hogs 0] [--out FILE]
"""

import argparse
import asyncio
import json
import os
import random
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


async def _client(port, until, counts, every):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due = time.monotonic()
    while time.monotonic() < until:
        if every:
            # Paced: one request per `every` seconds on this connection; a late one
            # is sent at once (the load catches up after a stall, as users' would).
            due += every
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
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


def load(port, seconds, conns, rate, out):
    """The load process: answers per 10 ms bucket (keyed by monotonic time) to `out`;
    `rate` requests a second in all (0: each connection as fast as answers come)."""
    counts = {}
    until = time.monotonic() + seconds
    every = conns / rate if rate else 0.0

    async def main():
        await asyncio.gather(*(_client(port, until, counts, every) for _ in range(conns)))

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


def run(proxy, seconds, conns, rate, tmp):
    out = os.path.join(tmp, f"counts-{proxy.name}.json")
    argv = [sys.executable, __file__, "--load", str(proxy.port), str(seconds), str(conns), str(rate), out]
    lp = subprocess.Popen(argv)
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
        "first_p90": p90(firsts),
        "call_p50": statistics.median(calls),
        "rate": median / BUCKET,
        "firsts": firsts,
    }


def p90(xs):
    return sorted(xs)[int(len(xs) * 0.9)]


def median_difference(xs, ys, draws=2000):
    """median(xs) - median(ys), and a bootstrap 95 % interval for it."""
    rng = random.Random(1)
    diffs = sorted(statistics.median(rng.choices(xs, k=len(xs))) - statistics.median(rng.choices(ys, k=len(ys)))
                   for _ in range(draws))
    return statistics.median(xs) - statistics.median(ys), diffs[int(draws * 0.025)], diffs[int(draws * 0.975)]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        port, seconds, conns, rate, out = sys.argv[2:7]
        return load(int(port), float(seconds), int(conns), float(rate), out)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switchyard", required=True)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--rate", type=float, default=0,
                    help="offered load in req/s for every proxy alike (default: as fast as each proxy answers)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                    help="another switchyard build in the same run (e.g. the one before a change)")
    ap.add_argument("--haproxy-api", choices=["tcp", "unix"], default="tcp",
                    help="HAProxy's runtime API over TCP, as switchyard's admin API is (default), or its unix socket")
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
                    p = HAProxy(tmp, 1, blue.port, green.port, api=args.haproxy_api)
                try:
                    res = run(p, args.seconds, args.conns, args.rate, tmp)
                finally:
                    p.proc.stop()
                shown = {k: v for k, v in res.items() if k != "firsts"}
                print(f"round {r + 1} {name}: {shown}", flush=True)
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
        f"--conns {args.conns}{f' --rate {args.rate:g}' if args.rate else ''} --rounds {args.rounds}"
        f"{' --haproxy-api unix' if args.haproxy_api == 'unix' else ''}"
        f"{f' --hogs {args.hogs}' if args.hogs else ''}`: one worker each; "
        f"{f'{args.hogs} busy loops beside; ' if args.hogs else ''}a python asyncio load of "
        f"{args.conns} keep-alive connections{f' paced to {args.rate:g} req/s' if args.rate else ''}; a switch every {PERIOD * 1000:.0f} ms; HAProxy's runtime API over "
        f"{'TCP' if args.haproxy_api == 'tcp' else 'its unix socket'}. Medians over rounds.", "",
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
    pooled = {name: [f for x in rs for f in x["firsts"]] for name, rs in results.items()}
    lines += ["", "Every probed switch pooled: first target answer on a fresh connection (ms).", "",
              "| proxy | probed switches | p50 | p90 | p50 minus HAProxy's (95 % interval) |", "|---|---|---|---|---|"]
    for name, xs in pooled.items():
        vs = "—"
        if name != "haproxy":
            d, lo, hi = median_difference(xs, pooled["haproxy"])
            vs = f"{d:+.2f} ({lo:+.2f} to {hi:+.2f})"
        lines.append(f"| {name} | {len(xs)} | {statistics.median(xs):.2f} | {p90(xs):.2f} | {vs} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
