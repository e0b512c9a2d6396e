#!/usr/bin/env python3
"""Load comparison: switchyard against nginx and HAProxy, configured the same way.

Everything runs on loopback: two nginx upstreams (one worker each, a 5-byte body:
"blue!" and "green"), and in front of them each proxy with keep-alive to the
upstream. wrk (1 thread, 64 connections) measures each proxy in alternating
order (A B C, C B A, ...), at 1 and 2 workers; a single-connection run gives the
latency each proxy adds at light load; a switch storm moves traffic between blue
and green every 100 ms through each proxy's own mechanism (switchyard's admin
API, nginx config edit + reload, HAProxy's runtime API) and counts errors and
how long old-pool answers persist after each switch. It can also measure RSS
with 10,000 idle keep-alive client connections.

Usage:  python3 benches/compare.py [--quick] [--switchyard PATH] [--extra NAME=PATH ...]
        (installs wrk, nginx and haproxy from Debian packages when missing; builds
        the release binary when --switchyard is not given; writes benches/RESULTS.md)
"""

import argparse
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, cpu_times, free_port, rss_kib, wait_port  # noqa: E402

LUA = """
done = function(summary, latency, requests)
  io.write(string.format("SY p50=%d p99=%d p999=%d requests=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), summary.requests,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def ensure_tools():
    missing = [pkg for tool, pkg in [("wrk", "wrk"), ("nginx", "nginx-light"), ("haproxy", "haproxy")]
               if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}")]
    if missing:
        print(f"installing {' '.join(missing)} from Debian packages", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        # Debian starts the packaged services; we run our own instances.
        for svc in ("nginx", "haproxy"):
            subprocess.run(["service", svc, "stop"], capture_output=True)


def which(tool):
    return shutil.which(tool) or f"/usr/sbin/{tool}"


class Proc:
    """A server we started; stopped by its own pid."""

    def __init__(self, name, argv, port, cwd=None):
        self.name, self.port = name, port
        # Its log goes to an unnamed file, not to a pipe read by a thread here: that
        # thread woke on every line (switchyard logs each switch) and took Python's
        # lock from the harness' own client threads (switch_dip.py's probes).
        self.errors = tempfile.TemporaryFile()
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=self.errors)
        wait_port(port)

    @property
    def log(self):
        """The last 50 lines it logged (bytes). `pread`: the server shares the file offset."""
        fd = self.errors.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).splitlines(keepends=True)[-50:]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def pids(self):
        """The process and its children (nginx's workers do the work and hold the connections)."""
        return [str(self.p.pid)] + subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True,
                                                  text=True).stdout.split()

    def cpu_seconds(self):
        """(user, system) CPU seconds of the process and its children so far, from /proc."""
        user = system = 0.0
        for pid in self.pids():
            try:
                u, s = cpu_times(pid)
            except (OSError, IndexError, ValueError):
                continue
            user, system = user + u, system + s
        return user, system

    def rss_kib(self):
        """RSS of the process and its children (nginx's workers hold the connections)."""
        total = 0
        for pid in self.pids():
            try:
                total += rss_kib(pid)
            except OSError:
                pass
        return total


def nginx_upstream(tmp, body):
    port = free_port()
    d = tempfile.mkdtemp(dir=tmp)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 20000; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d}; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ default_type text/plain; return 200 "{body}"; }} }} }}
""")
    return Proc(f"upstream-{body}", [which("nginx"), "-c", conf, "-p", d], port)


def switchyard_config(workers, port, admin, blue, green, tls=""):
    """The benchmarks' switchyard config: service `app`, pools blue and green (`tls`:
    a `[listener.tls]` table, or nothing)."""
    return f"""[runtime]
worker_threads = {workers}
[listener]
address = "127.0.0.1:{port}"
{tls}
[admin]
address = "127.0.0.1:{admin}"
[state]
file = "state.json"
[[service]]
name = "app"
[service.traffic]
active = "blue"
[service.pools.blue]
backends = ["127.0.0.1:{blue}"]
[service.pools.green]
backends = ["127.0.0.1:{green}"]
"""


class Switchyard:
    kind = "switchyard"

    def __init__(self, tmp, binary, workers, blue, green, name="switchyard"):
        self.name = name
        self.port, self.admin = free_port(), free_port()
        d = tempfile.mkdtemp(dir=tmp)
        conf = os.path.join(d, "sy.toml")
        with open(conf, "w") as f:
            f.write(switchyard_config(workers, self.port, self.admin, blue, green))
        args = [binary, "serve", "-c", conf, "--reset-state"]
        # Access log off unless the variant's name asks for it ("…+log": lines go to /dev/null).
        if "--access-log" in sh([binary, "serve", "--help"]) and not name.endswith("+log"):
            args += ["--access-log", "off"]
        self.proc = Proc(name, args, self.port)
        wait_port(self.admin)

    def switch(self, pool):
        # A bare socket, as HAProxy's runtime API is driven below: the client's own
        # cost (urllib's is ~1 ms of Python) is not the proxy's.
        body = json.dumps({"pool": pool}).encode()
        req = (f"POST /v1/services/app/switch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
            s.sendall(req)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"switch to {pool} failed: {answer[:200]!r}")


class Nginx:
    kind = "nginx"

    def __init__(self, tmp, workers, blue, green):
        self.name = "nginx"
        self.port = free_port()
        self.d = tempfile.mkdtemp(dir=tmp)
        self.conf = os.path.join(self.d, "nginx.conf")
        self.blue, self.green, self.workers = blue, green, workers
        self.write("blue")
        self.proc = Proc("nginx", [which("nginx"), "-c", self.conf, "-p", self.d], self.port)

    def write(self, pool):
        d = self.d
        with open(self.conf + ".tmp", "w") as f:
            f.write(f"""worker_processes {self.workers}; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 20000; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d}; keepalive_requests 1000000;
  upstream blue {{ server 127.0.0.1:{self.blue}; keepalive 128; }}
  upstream green {{ server 127.0.0.1:{self.green}; keepalive 128; }}
  server {{ listen 127.0.0.1:{self.port} backlog=4096;
    location / {{ proxy_pass http://{pool}; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
        os.replace(self.conf + ".tmp", self.conf)

    def switch(self, pool):
        self.write(pool)
        subprocess.run([which("nginx"), "-c", self.conf, "-p", self.d, "-s", "reload"], check=True,
                       capture_output=True)


class HAProxy:
    kind = "haproxy"

    def __init__(self, tmp, workers, blue, green, api="unix"):
        self.name = "haproxy"
        self.port, self.admin = free_port(), free_port()
        # Its runtime API on a unix socket, or on TCP as switchyard's admin API is.
        self.api = api
        d = tempfile.mkdtemp(dir=tmp)
        self.sock = os.path.join(d, "admin.sock")
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(f"""global
  nbthread {workers}
  maxconn 9000
  stats socket {self.sock} level admin
  stats socket ipv4@127.0.0.1:{self.admin} level admin
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:{self.port}
  default_backend app
backend app
  server blue 127.0.0.1:{blue} weight 100
  server green 127.0.0.1:{green} weight 0
""")
        self.proc = Proc("haproxy", [which("haproxy"), "-f", conf, "-db"], self.port)

    def cmd(self, line):
        if self.api == "tcp":
            s = socket.create_connection(("127.0.0.1", self.admin), timeout=5)
        else:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.sock)
        with s:
            s.sendall((line + "\n").encode())
            while s.recv(4096):
                pass

    def switch(self, pool):
        other = "blue" if pool == "green" else "green"
        self.cmd(f"set server app/{pool} weight 100; set server app/{other} weight 0")


def wrk(port, seconds, conns, tmp):
    script = os.path.join(tmp, "report.lua")
    with open(script, "w") as f:
        f.write(LUA)
    out = sh(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{port}/"])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = dict(kv.split("=") for kv in re.search(r"^SY (.*)$", out, re.M).group(1).split())
    return {"rps": rps, "p50": int(m["p50"]), "p99": int(m["p99"]), "p999": int(m["p999"]),
            "errors": sum(int(m[k]) for k in ("connect", "read", "write", "timeout")), "non2xx": int(m["status"]),
            "requests": int(m["requests"])}


def stale_window(conn, new_body, deadline=5.0):
    """On an already-open keep-alive connection, right after the switch returned:
    (old-pool answers before the first new-pool one, ms until that first one)."""
    start, old = time.perf_counter(), 0
    try:
        while time.perf_counter() - start < deadline:
            conn.request("GET", "/")
            if conn.getresponse().read().decode() == new_body:
                return old, (time.perf_counter() - start) * 1000
            old += 1
    except (OSError, http.client.HTTPException):
        return None
    return old, deadline * 1000


def switch_storm(proxy, seconds, tmp):
    result = {}
    t = threading.Thread(target=lambda: result.update(wrk(proxy.port, seconds, 64, tmp)))
    t.start()
    time.sleep(0.5)
    flips, windows, pool, dropped = 0, [], "blue", 0
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    end = time.time() + seconds - 1.5
    while time.time() < end:
        pool = "green" if pool == "blue" else "blue"
        if flips % 10 == 9:
            try:  # make sure the probe connection is open and warm before the switch
                conn.request("GET", "/")
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                dropped += 1  # the proxy closed a kept-alive client connection (nginx does on reload)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
        proxy.switch(pool)
        flips += 1
        if flips % 10 == 0:
            # How long an already-open keep-alive client still sees the old pool.
            w = stale_window(conn, "blue!" if pool == "blue" else "green")
            if w is None:
                dropped += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
            else:
                windows.append(w)
        time.sleep(0.1)
    conn.close()
    t.join()
    result["flips"] = flips
    result["stale_old"] = sum(o for o, _ in windows)
    result["stale_samples"] = len(windows)
    result["dropped"] = dropped
    result["stale_ms"] = statistics.median(ms for _, ms in windows) if windows else None
    return result


def idle_rss(proxy, n):
    """RSS of the proxy process with n idle keep-alive client connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 1000)), hard))
    socks, req = [], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", proxy.port))
            s.sendall(req)
            s.recv(4096)
            socks.append(s)
        time.sleep(1.0)
        return proxy.proc.rss_kib(), len(socks)
    finally:
        for s in socks:
            s.close()


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {
        "kernel": platform.release(),
        "nginx": subprocess.run([which("nginx"), "-v"], capture_output=True, text=True).stderr.strip(),
        "haproxy": sh([which("haproxy"), "-v"]).splitlines()[0],
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
    }
    return f"{os.cpu_count()} cores, {cpu}", versions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switchyard", help="switchyard binary (default: build target/release/switchyard)")
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME=PATH: another switchyard binary to compare (a NAME ending in +log keeps the access log on)")
    ap.add_argument("--quick", action="store_true", help="shorter runs (5 s instead of 10 s), one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--no-storm", action="store_true")
    ap.add_argument("--only-switchyard", action="store_true", help="compare switchyard binaries only")
    ap.add_argument("--rss", type=int, default=10000, help="idle connections for the RSS check (0: skip)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "RESULTS.md"))
    args = ap.parse_args()
    ensure_tools()
    binary = args.switchyard
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--bin", "switchyard"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "switchyard")
    extras = [e.split("=", 1) for e in args.extra]
    seconds = 5 if args.quick else 10
    rounds = 1 if args.quick else args.rounds
    workers = [int(w) for w in args.workers.split(",")]
    tmp = tempfile.mkdtemp(prefix="sy-bench-")
    blue, green = nginx_upstream(tmp, "blue!"), nginx_upstream(tmp, "green")
    report = []
    started = []
    try:
        direct = wrk(blue.port, seconds, 64, tmp)
        direct_light = wrk(blue.port, seconds, 1, tmp)
        print(f"direct: {direct['rps']:.0f} req/s p50 {direct['p50']}us p99 {direct['p99']}us; "
              f"1 conn p50 {direct_light['p50']}us", flush=True)
        results = {}
        for w in workers:
            makers = [lambda: Switchyard(tmp, binary, w, blue.port, green.port)]
            makers += [lambda n=n, p=p: Switchyard(tmp, p, w, blue.port, green.port, name=n) for n, p in extras]
            if not args.only_switchyard:
                makers += [lambda: Nginx(tmp, w, blue.port, green.port), lambda: HAProxy(tmp, w, blue.port, green.port)]
            for r in range(rounds):
                order = makers if r % 2 == 0 else makers[::-1]
                for make in order:
                    p = make()
                    started.append(p)
                    try:
                        wrk(p.port, 1, 64, tmp)  # warm up connections
                        u0, s0 = p.proc.cpu_seconds()
                        heavy = wrk(p.port, seconds, 64, tmp)
                        u1, s1 = p.proc.cpu_seconds()
                        n = max(heavy["requests"], 1)
                        heavy["user_us"], heavy["sys_us"] = (u1 - u0) * 1e6 / n, (s1 - s0) * 1e6 / n
                        light = wrk(p.port, seconds, 1, tmp)
                    finally:
                        p.proc.stop()
                    results.setdefault((w, p.name), []).append((heavy, light))
                    print(f"w={w} round {r + 1} {p.name}: {heavy['rps']:.0f} req/s p50 {heavy['p50']}us "
                          f"p99 {heavy['p99']}us p99.9 {heavy['p999']}us errors {heavy['errors']} "
                          f"non2xx {heavy['non2xx']}; cpu/req user {heavy['user_us']:.1f}us sys {heavy['sys_us']:.1f}us; "
                          f"1 conn p50 {light['p50']}us", flush=True)
        storms = {}
        if not args.no_storm:
            for make in [lambda: Switchyard(tmp, binary, 1, blue.port, green.port),
                         lambda: Nginx(tmp, 1, blue.port, green.port), lambda: HAProxy(tmp, 1, blue.port, green.port)]:
                p = make()
                try:
                    storms[p.name] = switch_storm(p, 20, tmp)
                finally:
                    p.proc.stop()
                s = storms[p.name]
                print(f"storm {p.name}: {s['flips']} switches, {s['requests']} requests, errors {s['errors']}, "
                      f"non2xx {s['non2xx']}, old-pool answers after {s['stale_samples']} sampled switches: "
                      f"{s['stale_old']} (median {s['stale_ms']} ms to the first new-pool answer); probe connection "
                      f"closed by the proxy {s['dropped']} times", flush=True)
        rss = {}
        if args.rss:
            for make in [lambda: Switchyard(tmp, binary, 1, blue.port, green.port), lambda: Nginx(tmp, 1, blue.port, green.port)]:
                p = make()
                try:
                    base = p.proc.rss_kib()
                    rss[p.name] = (base, *idle_rss(p, args.rss))
                finally:
                    p.proc.stop()
                print(f"rss {p.name}: {rss[p.name][0]} KiB idle, {rss[p.name][1]} KiB with {rss[p.name][2]} "
                      f"keep-alive connections", flush=True)
        report = render(results, direct, direct_light, storms, rss, seconds, rounds, workers, args)
    finally:
        for p in started:
            p.proc.stop()
        blue.stop()
        green.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(f"\nwrote {args.out}")


def render(results, direct, direct_light, storms, rss, seconds, rounds, workers, args):
    cores, versions = machine()
    med = lambda xs: statistics.median(xs)
    lines = ["# Benchmark results", "",
             f"Machine: {cores}; kernel {versions['kernel']}; {versions['nginx']}; {versions['haproxy']}; {versions['wrk']}.",
             "", "Produced by `python3 benches/compare.py " + " ".join(sys.argv[1:]) + "` "
             f"({rounds} alternating round(s) of {seconds} s per proxy; wrk -t1 -c64; light load = wrk -t1 -c1).",
             "Upstreams: two nginx instances with one worker each, answering a 5-byte body. All on loopback. "
             "CPU per request: the proxy's user and system time (with its children) from /proc over the "
             "64-connection run, divided by the requests it answered.", "",
             f"Direct to the upstream: {direct['rps']:.0f} req/s, p50 {direct['p50']} µs, p99 {direct['p99']} µs; "
             f"one connection: p50 {direct_light['p50']} µs.", ""]
    for w in workers:
        lines += [f"## {w} worker(s)", "",
                  "| proxy | req/s | vs nginx | vs direct | p50 µs | p99 µs | p99.9 µs | added p50 at 1 conn µs | CPU µs/request user + sys | errors | non-2xx |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        nginx_rps = med([h["rps"] for h, _ in results.get((w, "nginx"), [])] or [float("nan")])
        names = {n for (ww, n) in results if ww == w}
        for (ww, name), runs in sorted(results.items(), key=lambda kv: kv[0][1]):
            if ww != w:
                continue
            rps = med([h["rps"] for h, _ in runs])
            p50, p99, p999 = (med([h[k] for h, _ in runs]) for k in ("p50", "p99", "p999"))
            added = med([l["p50"] for _, l in runs]) - direct_light["p50"]
            errs = sum(h["errors"] for h, _ in runs)
            non2xx = sum(h["non2xx"] for h, _ in runs)
            user, system = (med([h[k] for h, _ in runs]) for k in ("user_us", "sys_us"))
            lines.append(f"| {name} | {rps:.0f} | {rps / nginx_rps:.2f} | {rps / direct['rps']:.2f} | {p50:.0f} | "
                         f"{p99:.0f} | {p999:.0f} | {added:.0f} | {user:.1f} + {system:.1f} | {errs} | {non2xx} |")
        lines.append("")
    if storms:
        lines += ["## Switch storm", "",
                  "wrk for 20 s (64 connections) while traffic moves between blue and green every 100 ms through "
                  "each proxy's own mechanism: switchyard `POST /v1/services/app/switch`, nginx config rewrite + "
                  "`nginx -s reload`, HAProxy `set server … weight` on the runtime socket. On every tenth switch, a "
                  "client with an already-open keep-alive connection asks again right after the switch call returned: "
                  "old-pool answers it still got, and the median time to the first new-pool answer (one request "
                  "under load is ~1–2 ms).", "",
                  "| proxy | switches | requests | socket errors | non-2xx | sampled switches | old-pool answers after them | ms to first new-pool answer | probe connection closed by proxy |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, s in storms.items():
            stale = "n/a" if s["stale_ms"] is None else f"{s['stale_ms']:.1f}"
            lines.append(f"| {name} | {s['flips']} | {s['requests']} | {s['errors']} | {s['non2xx']} | "
                         f"{s['stale_samples']} | {s['stale_old']} | {stale} | {s['dropped']} |")
        lines.append("")
    if rss:
        lines += ["## Memory with idle keep-alive connections", "",
                  "RSS from /proc (process and its children), before and with N idle keep-alive client connections "
                  "that have each made one request.", "",
                  "| proxy | RSS at start (KiB) | RSS with N idle connections (KiB) | N |", "|---|---|---|---|"]
        for name, (base, with_conns, n) in rss.items():
            lines.append(f"| {name} | {base} | {with_conns} | {n} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
