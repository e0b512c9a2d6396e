#!/usr/bin/env python3
"""Soak: 1,000 switches and 100 reloads under wrk load, with backends killed and
restarted, outside CI's default run (it takes a few minutes).

Two pools of two `switchyard app` backends each, behind `switchyard serve` with
active health checks. wrk (1 thread, 32 keep-alive connections) runs for the whole
soak while this script:
  - switches traffic between blue and green through the admin API (--switches),
  - every 10th switch rewrites the config file (a timeout edit) and sends SIGHUP
    (--reloads in all),
  - every 50th switch kills one backend of the live pool with SIGKILL and
    restarts it on the same port a second later.
It reports requests, non-2xx answers and socket errors from wrk, the number of
kills, and the proxy's RSS before and after. A request can only fail when it was
in flight on a backend at the moment that backend was killed, so the failures
must stay within kills x connections (each connection has at most one request in
flight); everything else must be 0.

Usage:  python3 benches/soak.py [--switchyard PATH] [--switches N] [--reloads N]
        (installs wrk from Debian when missing; builds the release binary when
        --switchyard is not given)
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, free_port, rss_kib, wait_port  # noqa: E402

CONNS = 32


class App:
    def __init__(self, binary, name, port):
        self.binary, self.name, self.port = binary, name, port
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "app", "--name", self.name, "--listen", f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def config_text(tmp, proxy, admin, pools, request_timeout):
    def backends(apps):
        return ", ".join(f'"127.0.0.1:{a.port}"' for a in apps)
    return f"""[listener]
address = "127.0.0.1:{proxy}"
[admin]
address = "127.0.0.1:{admin}"
[state]
file = "{tmp}/state.json"
[[service]]
name = "shop"
[service.traffic]
active = "blue"
[service.pools.blue]
backends = [{backends(pools['blue'])}]
[service.pools.green]
backends = [{backends(pools['green'])}]
[service.health]
path = "/healthz"
interval = "200ms"
timeout = "200ms"
unhealthy_threshold = 1
healthy_threshold = 1
[service.timeouts]
request = "{request_timeout}s"
"""


def post(admin, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard")
    ap.add_argument("--switches", type=int, default=1000)
    ap.add_argument("--reloads", type=int, default=100)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    binary = args.switchyard
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target/release/switchyard")

    tmp = tempfile.mkdtemp(prefix="sy-soak-")
    pools = {p: [App(binary, f"{p}-{i}", free_port()) for i in (1, 2)] for p in ("blue", "green")}
    proxy_port, admin_port = free_port(), free_port()
    cfg = os.path.join(tmp, "sy.toml")
    with open(cfg, "w") as f:
        f.write(config_text(tmp, proxy_port, admin_port, pools, 30))
    proxy = subprocess.Popen([binary, "serve", "-c", cfg, "--access-log", "off"],
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "proxy.log"), "w"))
    wait_port(proxy_port)
    wait_port(admin_port)
    # Warm up so that the RSS before counts the connections and buffers of steady load.
    subprocess.run(["wrk", "-t1", f"-c{CONNS}", "-d3s", f"http://127.0.0.1:{proxy_port}/"], capture_output=True)
    rss_before = rss_kib(proxy.pid)

    seconds = max(30, args.switches // 20)
    load = subprocess.Popen(["wrk", "-t1", f"-c{CONNS}", f"-d{seconds}s", f"http://127.0.0.1:{proxy_port}/"],
                            stdout=subprocess.PIPE, text=True)
    live, kills, reloads, refused, samples = "blue", 0, 0, 0, []
    pace = (seconds - 5) / args.switches
    reload_every = max(1, args.switches // max(1, args.reloads))
    started = time.time()
    for i in range(1, args.switches + 1):
        live = "green" if live == "blue" else "blue"
        if post(admin_port, "/v1/services/shop/switch", {"pool": live, "reason": f"soak {i}"}) != 200:
            refused += 1
        if i % reload_every == 0 and reloads < args.reloads:
            with open(cfg, "w") as f:
                f.write(config_text(tmp, proxy_port, admin_port, pools, 30 + reloads % 2))
            proxy.send_signal(signal.SIGHUP)
            reloads += 1
        if i % 50 == 0:
            victim = pools[live][kills % 2]
            victim.kill()
            kills += 1
            time.sleep(1.0)
            victim.start()
        if i % max(1, args.switches // 10) == 0:
            samples.append(rss_kib(proxy.pid))
        time.sleep(max(0.0, started + i * pace - time.time()))
    out, _ = load.communicate()
    rss_after = rss_kib(proxy.pid)
    proxy.send_signal(signal.SIGTERM)
    proxy.wait(timeout=30)
    for apps in pools.values():
        for a in apps:
            a.kill()

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    failed = non2xx + socket_errors
    bound = kills * CONNS
    print(f"switches {args.switches} (refused {refused}), reloads {reloads}, backend kills {kills}, {seconds} s of load")
    print(f"requests {requests}, non-2xx {non2xx}, socket errors {socket_errors}")
    print(f"failed {failed}: allowed at most {bound} (requests in flight on a killed backend: kills x {CONNS} connections)")
    print(f"RSS before {rss_before} KiB, after {rss_after} KiB ({(rss_after - rss_before) / max(1, rss_before):+.1%})")
    print(f"RSS every {max(1, args.switches // 10)} switches (KiB): {' '.join(map(str, samples))}")
    # Growth is judged over the second half of the run: the first half fills
    # allocator arenas, history (200 events) and upstream connection stacks.
    half = samples[len(samples) // 2:] or [rss_after]
    growth = (half[-1] - half[0]) / max(1, half[0])
    print(f"RSS growth over the second half: {growth:+.1%}")
    ok = refused == 0 and failed <= bound and growth <= 0.05
    print("PASS" if ok else "FAIL")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
