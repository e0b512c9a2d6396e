#!/usr/bin/env python3
"""Scale: what one switch, one reload and start-up cost with 1 … 50,000 services (issue 12).

For each size N a config with N services `svc0 … svc{N-1}` is generated (host
`svcI.example`, pools blue and green with one backend each, all pointing at one
`switchyard app` upstream, no health checks, `active = "blue"`), checked with
`switchyard check`, and served from a fresh temp dir. Then, in order:

  start-up   spawn of `switchyard serve` until `GET /v1/services/svc{N-1}` answers 200
             (polled every 5 ms); also the moment the admin API first answered at all
  RSS        VmRSS after start-up and ~1 s of rest; KiB/service in the summary is
             (RSS(N) - RSS(smallest)) / (N - smallest), i.e. per extra service over size 1
             when size 1 is run
  switches   --switches sequential `POST /v1/services/svcI/switch` over random services,
             each to the pool that service does not have, on one keep-alive connection
             (connect cost excluded); p50, p99, max ms; any answer but 200 aborts; at most
             --switch-budget s (default 300) per size, fewer switches are then reported
  state      bytes of the state file plus any file beside it whose name starts with its
             name (a journal), after the switches
  reload     the file rewritten with one service's blue pool given a second backend (and
             back, alternating), then `POST /v1/reload` timed until its 200; 5 times,
             median and max ms; after each, a request to an unchanged service through the
             proxy must be answered by the upstream
  load       (one size only: the largest <= 10,000; --no-load skips it) wrk -t1 -c32 for
             --load-seconds with the Host spread over all services, while threads switch
             random services at --load-rate per second (paced, each thread owning its own
             services and keep-alive connection); wrk's requests, non-2xx/3xx and socket
             errors, and switches done/refused and the rate achieved

Usage:  python3 benches/scale.py --switchyard PATH [--sizes 1,1000,10000,50000] [--switches 200]
            [--load-seconds 30] [--load-rate 1000] [--no-load] [--markdown OUT.md]
        (needs wrk for the load part; never builds anything itself)
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_times, free_port, rss_kib, wait_port  # noqa: E402

POLL = 0.005  # start-up poll interval, s
RELOADS = 5
LOAD_MAX_SIZE = 10000
LOAD_THREADS = 4
LOAD_CONNS = 32
JSON = {"Content-Type": "application/json"}

LUA = """
local n = %(n)d
local hosts = {}
for i = 0, n - 1 do hosts[i + 1] = "svc" .. i .. ".example" end
init = function(args)
  math.randomseed(%(seed)d)
end
request = function()
  return wrk.format("GET", "/", { Host = hosts[math.random(1, n)] })
end
done = function(summary, latency, requests)
  io.write(string.format("SY requests=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d p50=%%d p99=%%d\\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


class Fail(Exception):
    pass


def config_text(n, proxy, admin, state, up, up2, edited=None):
    """The whole config as one string; `edited` = index of the service whose blue pool
    also gets backend `up2`."""
    head = f"""[listener]
address = "127.0.0.1:{proxy}"
[admin]
address = "127.0.0.1:{admin}"
[state]
file = "{state}"
"""
    one = f'"127.0.0.1:{up}"'
    two = f'"127.0.0.1:{up}", "127.0.0.1:{up2}"'
    parts = [head]
    for i in range(n):
        blue = two if i == edited else one
        parts.append(f"""
[[service]]
name = "svc{i}"
hosts = ["svc{i}.example"]
[service.traffic]
active = "blue"
[service.pools.blue]
backends = [{blue}]
[service.pools.green]
backends = [{one}]
""")
    return "".join(parts)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def pct(sorted_xs, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, math.ceil(p / 100 * len(sorted_xs)) - 1))
    return sorted_xs[k]


class Admin:
    """One persistent HTTP/1.1 keep-alive connection to the admin API."""

    def __init__(self, port, timeout=120):
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=JSON if data is not None else {})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection: reconnect once (not timed
                # apart; a reconnect shows up as a slow sample, which is what happened).
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise

    def close(self):
        self.conn.close()


class Upstream:
    def __init__(self, binary, name, tmp):
        self.name, self.port = name, free_port()
        self.proc = subprocess.Popen([binary, "app", "--name", name, "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"{name}.log"), "w"))
        wait_port(self.port)

    def stop(self):
        stop(self.proc)


def stop(proc, grace=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get_via_proxy(port, host, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def state_bytes(state):
    d, base = os.path.dirname(state), os.path.basename(state)
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f.startswith(base) and os.path.isfile(os.path.join(d, f)))


def wait_ready(proc, admin, svc, timeout, log):
    """(s until the admin API first answered anything, s until GET /v1/services/svc is 200),
    both from `proc`'s spawn time `proc.t0`."""
    first = None
    deadline = proc.t0 + timeout
    polls = 0
    while time.perf_counter() < deadline and polls < timeout / POLL + 1000:
        polls += 1
        if proc.poll() is not None:
            raise Fail(f"switchyard serve exited with {proc.returncode} during start-up:\n{tail(log)}")
        conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
        try:
            conn.request("GET", f"/v1/services/{svc}")
            r = conn.getresponse()
            r.read()
            now = time.perf_counter()
            if first is None:
                first = now - proc.t0
            if r.status == 200:
                return first, now - proc.t0
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(POLL)
    raise Fail(f"GET /v1/services/{svc} not 200 within {timeout}s of spawn:\n{tail(log)}")


def switches(admin, n, count, rng, current, budget):
    """Up to `count` sequential switches over random services, stopping early once
    `budget` s are spent; latencies in ms."""
    lat = []
    deadline = time.perf_counter() + budget
    for _ in range(count):
        if time.perf_counter() >= deadline:
            break
        i = rng.randrange(n)
        target = "green" if current[i] == "blue" else "blue"
        t = time.perf_counter()
        status, body = admin.call("POST", f"/v1/services/svc{i}/switch", {"pool": target, "reason": "bench"})
        lat.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise Fail(f"switch svc{i} -> {target}: {status} {body[:300]!r}")
        got = json.loads(body)
        if got.get("active") != target:
            raise Fail(f"switch svc{i} -> {target} answered 200 but active is {got.get('active')!r}")
        current[i] = target
    return lat


def reloads(cfg, admin, n, write, proxy_port, up_name):
    """RELOADS timed `POST /v1/reload`s, alternating one service's edit on and off; ms."""
    edited = n // 2
    probe = (edited + 1) % n  # an unchanged service (with n == 1 there is none: the edited one)
    out = []
    for r in range(RELOADS):
        write(edited if r % 2 == 0 else None)
        t = time.perf_counter()
        status, body = admin.call("POST", "/v1/reload")
        out.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise Fail(f"reload {r + 1}: {status} {body[:500]!r}")
        s, text = get_via_proxy(proxy_port, f"svc{probe}.example")
        if s != 200 or text.strip() not in ((up_name, "up2") if probe == edited else (up_name,)):
            raise Fail(f"after reload {r + 1}: GET svc{probe}.example through the proxy answered {s} {text[:200]!r}")
    return out


def load_storm(binary, tmp, n, proxy_port, admin_port, seconds, rate, current, seed):
    """wrk with Hosts spread over all services, and paced switches at `rate`/s meanwhile."""
    script = os.path.join(tmp, "spread.lua")
    with open(script, "w") as f:
        f.write(LUA % {"n": n, "seed": seed})
    wrk = subprocess.Popen(["wrk", "-t1", f"-c{LOAD_CONNS}", f"-d{seconds}s", "--timeout", "5s", "-s", script,
                            f"http://127.0.0.1:{proxy_port}/"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    lock = threading.Lock()
    tally = {"done": 0, "refused": 0, "errors": 0, "lat": [], "first_refusal": None}
    start = time.perf_counter() + 0.3  # let wrk connect first
    end = start + max(0.5, seconds - 0.8)
    ticket = [0]

    def worker(t):
        rng = random.Random(seed * 100 + t)
        admin = Admin(admin_port, timeout=60)
        mine = range(t, n, LOAD_THREADS)
        try:
            for _ in range(int(rate * seconds) + 1):
                with lock:
                    k = ticket[0]
                    ticket[0] += 1
                due = start + k / rate
                if due >= end:
                    return
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                if time.perf_counter() >= end:
                    return
                if not mine:
                    return
                i = rng.choice(mine)
                target = "green" if current[i] == "blue" else "blue"
                t0 = time.perf_counter()
                try:
                    status, body = admin.call("POST", f"/v1/services/svc{i}/switch",
                                              {"pool": target, "reason": "bench load"})
                except (OSError, http.client.HTTPException) as e:
                    status, body = None, repr(e).encode()
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    tally["lat"].append(ms)
                    if status == 200:
                        tally["done"] += 1
                        current[i] = target
                    else:
                        tally["refused" if status else "errors"] += 1
                        tally["first_refusal"] = tally["first_refusal"] or f"svc{i}: {status} {body[:200]!r}"
        finally:
            admin.close()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(min(LOAD_THREADS, n))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=seconds + 120)
    switch_span = min(time.perf_counter(), end + 60) - start
    try:
        out, _ = wrk.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        wrk.kill()
        out, _ = wrk.communicate()
        raise Fail(f"wrk did not finish within {seconds + 60}s:\n{out}")
    m = re.search(r"^SY (.*)$", out, re.M)
    if not m:
        raise Fail(f"wrk gave no summary (exit {wrk.returncode}):\n{out}")
    w = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = sorted(tally["lat"])
    return {
        "size": n, "seconds": seconds, "requests": w["requests"], "rps": float(rps.group(1)) if rps else float("nan"),
        "non2xx": w["status"], "socket_errors": w["connect"] + w["read"] + w["write"] + w["timeout"],
        "sock_detail": f"connect {w['connect']}, read {w['read']}, write {w['write']}, timeout {w['timeout']}",
        "p50_us": w["p50"], "p99_us": w["p99"],
        "switches": tally["done"], "refused": tally["refused"], "switch_errors": tally["errors"],
        "first_refusal": tally["first_refusal"], "rate_target": rate,
        "rate": tally["done"] / max(switch_span, 1e-9),
        "switch_p50": pct(lat, 50), "switch_p99": pct(lat, 99), "switch_max": lat[-1] if lat else float("nan"),
    }


def run_size(binary, n, args, load, seed):
    res = {"size": n, "asked": args.switches}
    with tempfile.TemporaryDirectory(prefix=f"sy-scale-{n}-") as tmp:
        ups = []
        proc = None
        try:
            up = Upstream(binary, "up", tmp)
            ups.append(up)
            up2 = Upstream(binary, "up2", tmp)
            ups.append(up2)
            os.mkdir(os.path.join(tmp, "state"))
            state = os.path.join(tmp, "state", "switchyard.json")
            proxy_port, admin_port = free_port(), free_port()
            cfg = os.path.join(tmp, "switchyard.toml")

            def write(edited=None):
                write_atomic(cfg, config_text(n, proxy_port, admin_port, state, up.port, up2.port, edited))

            t = time.perf_counter()
            write()
            res["gen_s"] = time.perf_counter() - t
            res["config_bytes"] = os.path.getsize(cfg)
            t = time.perf_counter()
            chk = subprocess.run([binary, "check", "-c", cfg], capture_output=True, text=True,
                                 timeout=args.start_timeout)
            res["check_s"] = time.perf_counter() - t
            if chk.returncode != 0:
                raise Fail(f"switchyard check -c {cfg} failed ({chk.returncode}):\n{chk.stdout}{chk.stderr}")

            log = os.path.join(tmp, "serve.log")
            t0 = time.perf_counter()
            proc = subprocess.Popen([binary, "serve", "-c", cfg, "--access-log", "off"],
                                    stdout=subprocess.DEVNULL, stderr=open(log, "w"))
            proc.t0 = t0
            res["admin_up_s"], res["startup_s"] = wait_ready(proc, admin_port, f"svc{n - 1}", args.start_timeout, log)
            res["startup_cpu_s"] = sum(cpu_times(proc.pid))
            wait_port(proxy_port, timeout=30)
            s, text = get_via_proxy(proxy_port, f"svc{n - 1}.example")
            if s != 200 or text.strip() != up.name:
                raise Fail(f"GET svc{n - 1}.example through the proxy answered {s} {text[:200]!r}")
            time.sleep(1.0)
            res["rss_kib"] = rss_kib(proc.pid)
            print(f"  N={n}: config {res['config_bytes'] / 1e6:.1f} MB generated in {res['gen_s']:.2f} s, "
                  f"check {res['check_s']:.2f} s; admin answered after {res['admin_up_s']:.3f} s, "
                  f"svc{n - 1} after {res['startup_s']:.3f} s (CPU {res['startup_cpu_s']:.2f} s); "
                  f"RSS {res['rss_kib'] / 1024:.1f} MiB", flush=True)

            rng = random.Random(seed)
            current = ["blue"] * n
            admin = Admin(admin_port)
            try:
                c0 = sum(cpu_times(proc.pid))
                lat = sorted(switches(admin, n, args.switches, rng, current, args.switch_budget))
                res["switches"] = len(lat)
                res["switch_cpu_ms"] = (sum(cpu_times(proc.pid)) - c0) * 1000 / max(1, len(lat))
                res["p50"], res["p99"], res["max"] = pct(lat, 50), pct(lat, 99), lat[-1] if lat else float("nan")
                res["state_bytes"] = state_bytes(state)
                print(f"  N={n}: {len(lat)} switches p50 {res['p50']:.2f} ms p99 {res['p99']:.2f} ms "
                      f"max {res['max']:.2f} ms (proxy CPU {res['switch_cpu_ms']:.2f} ms/switch); "
                      f"state {res['state_bytes']} bytes", flush=True)
                c0 = sum(cpu_times(proc.pid))
                rl = sorted(reloads(cfg, admin, n, write, proxy_port, up.name))
                res["reload_cpu_ms"] = (sum(cpu_times(proc.pid)) - c0) * 1000 / RELOADS
                res["reload_med"], res["reload_max"] = statistics.median(rl), rl[-1]
                print(f"  N={n}: {RELOADS} reloads median {res['reload_med']:.1f} ms max {res['reload_max']:.1f} ms "
                      f"(proxy CPU {res['reload_cpu_ms']:.1f} ms/reload)", flush=True)
            finally:
                admin.close()

            if load:
                print(f"  N={n}: load {args.load_seconds}s with {args.load_rate} switches/s ...", flush=True)
                res["load"] = load_storm(binary, tmp, n, proxy_port, admin_port, args.load_seconds,
                                         args.load_rate, current, seed)
                res["rss_after_load_kib"] = rss_kib(proc.pid)
            if proc.poll() is not None:
                raise Fail(f"switchyard serve exited with {proc.returncode}:\n{tail(log)}")
        finally:
            if proc is not None:
                stop(proc)
            for u in ups:
                u.stop()
    return res


def fmt(x, spec):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def render(results, cmdline):
    base = min(results, key=lambda r: r["size"])
    lines = [f"Command: `{cmdline}`", "",
             "| size | start-up s | RSS MiB | KiB/service | switch p50 ms | p99 ms | max ms | reload median ms "
             "| reload max ms | state bytes |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(results, key=lambda r: r["size"]):
        per = (r["rss_kib"] - base["rss_kib"]) / (r["size"] - base["size"]) if r["size"] > base["size"] else None
        lines.append(f"| {r['size']:,} | {r['startup_s']:.3f} | {r['rss_kib'] / 1024:.1f} | {fmt(per, '.2f')} | "
                     f"{r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | {r['reload_med']:.1f} | "
                     f"{r['reload_max']:.1f} | {r['state_bytes']:,} |")
    lines.append("")
    lines.append(f"KiB/service: (RSS(N) - RSS({base['size']:,})) / (N - {base['size']:,}). Start-up: spawn until "
                 "`GET /v1/services/svc{N-1}` is 200. Switch: sequential on one keep-alive connection. Reload: "
                 f"`POST /v1/reload` after a one-service edit, {RELOADS} times. State: the state file and any file "
                 "beside it starting with its name, after the switches.")
    short = [f"{r['size']:,}: {r['switches']} of {r['asked']}" for r in results if r["switches"] < r["asked"]]
    if short:
        lines.append(f"Switch figures from fewer switches than asked (--switch-budget ran out): {'; '.join(short)}.")
    lines.append("")
    for r in results:
        lo = r.get("load")
        if lo:
            lines.append(
                f"Load at {lo['size']:,} services: wrk -t1 -c{LOAD_CONNS} -d{lo['seconds']}s, Host spread over all "
                f"services: {lo['requests']:,} requests ({lo['rps']:,.0f}/s, p50 {lo['p50_us']} µs, p99 "
                f"{lo['p99_us']} µs), non-2xx/3xx {lo['non2xx']}, socket errors {lo['socket_errors']} "
                f"({lo['sock_detail']}); switches {lo['switches']:,} done, {lo['refused']} refused, "
                f"{lo['switch_errors']} failed, {lo['rate']:.1f}/s achieved of {lo['rate_target']}/s asked "
                f"(switch p50 {lo['switch_p50']:.1f} ms, p99 {lo['switch_p99']:.1f} ms, max {lo['switch_max']:.1f} ms).")
            if lo["first_refusal"]:
                lines.append(f"First refused switch: {lo['first_refusal']}")
            lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switchyard", required=True, help="the switchyard binary to measure")
    ap.add_argument("--sizes", default="1,1000,10000,50000", help="comma-separated service counts")
    ap.add_argument("--switches", type=int, default=200, help="sequential switches per size")
    ap.add_argument("--load-seconds", type=int, default=30)
    ap.add_argument("--load-rate", type=float, default=1000, help="switches per second asked during the load")
    ap.add_argument("--no-load", action="store_true", help="skip the load + switch storm")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--start-timeout", type=float, default=300, help="s allowed for check and for start-up")
    ap.add_argument("--switch-budget", type=float, default=300,
                    help="s allowed for the sequential switches of one size; fewer are measured when it runs out")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    cmdline = "python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        ap.error("--sizes: positive integers")
    if args.switches < 1 or args.load_rate <= 0 or args.load_seconds < 1:
        ap.error("--switches, --load-rate and --load-seconds must be positive")
    binary = os.path.abspath(args.switchyard)
    load_size = None
    if not args.no_load:
        fit = [s for s in sizes if s <= LOAD_MAX_SIZE]
        load_size = fit[-1] if fit else None
        if load_size is not None and not shutil.which("wrk"):
            sys.exit("wrk not found (apt-get install wrk), or pass --no-load")
    print(cmdline, flush=True)
    results = []
    try:
        for n in sizes:
            print(f"size {n:,}", flush=True)
            results.append(run_size(binary, n, args, n == load_size, args.seed + n))
    except Fail as e:
        print(f"FAILED: {e}", file=sys.stderr)
        if results:
            print(render(results, cmdline))
        return 1
    report = render(results, cmdline)
    print()
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report + "\n")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
