#!/usr/bin/env python3
"""Connection flood: 20,000 client connections against `max_connections = 1000`.

Opens --conns connections to a switchyard (one `switchyard app` backend) and sends
one keep-alive GET on each, then counts how many are answered while all of them
stay open: the limit must hold (at most max_connections answered), the proxy must
keep serving those it accepted (a second request on each is answered), must not
spin (its CPU time during the hold is reported), and once the first ones close,
the waiting ones must be answered.

Usage:  python3 benches/flood.py [--switchyard PATH] [--conns 20000] [--limit 1000]
"""

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, cpu_times, free_port, wait_port  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
OTHER = {}


def cpu_seconds(pid):
    return sum(cpu_times(pid))


def exchange(socks, seconds, sent):
    """Sends one GET on each socket of `socks` once it is connected (unless it is
    in `sent` already) and returns the sockets that got an HTTP answer within
    `seconds` (answers other than 200 are tallied in OTHER)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ if s in sent else selectors.EVENT_WRITE)
    got = set()
    deadline = time.time() + seconds
    while time.time() < deadline and len(got) < len(socks):
        for key, events in sel.select(timeout=0.1):
            s = key.fileobj
            if events & selectors.EVENT_WRITE:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    try:
                        s.send(REQUEST)
                        sent.add(s)
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    except OSError:
                        pass
                sel.unregister(s)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 "):
                got.add(s)
            if not data.startswith(b"HTTP/1.1 200"):
                OTHER[data[:12]] = OTHER.get(data[:12], 0) + 1
            sel.unregister(s)
    sel.close()
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard")
    ap.add_argument("--conns", type=int, default=20000)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and args.conns > hard - 500:
        print(f"descriptor limit {hard}: {hard - 500} connections instead of {args.conns}")
        args.conns = hard - 500
    binary = args.switchyard
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target/release/switchyard")
    tmp = tempfile.mkdtemp(prefix="sy-flood-")
    app_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    app = subprocess.Popen([binary, "app", "--name", "blue-1", "--listen", f"127.0.0.1:{app_port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = os.path.join(tmp, "sy.toml")
    with open(cfg, "w") as f:
        f.write(f"""[listener]
address = "127.0.0.1:{proxy_port}"
max_connections = {args.limit}
idle_timeout = "300s"
[admin]
address = "127.0.0.1:{admin_port}"
[state]
file = "{tmp}/state.json"
[[service]]
name = "app"
[service.traffic]
active = "blue"
[service.pools.blue]
backends = ["127.0.0.1:{app_port}"]
[service.timeouts]
connect = "10s"
""")
    proxy = subprocess.Popen([binary, "serve", "-c", cfg, "--access-log", "off"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))
    wait_port(app_port)
    wait_port(proxy_port)
    time.sleep(0.2)  # the wait_port probe connection closes
    socks = []
    for _ in range(args.conns):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", proxy_port))
        socks.append(s)
    sent = set()
    cpu0 = cpu_seconds(proxy.pid)
    first = exchange(socks, 20.0, sent)
    cpu_hold = cpu_seconds(proxy.pid) - cpu0
    # The accepted ones keep being served: a second request on each.
    for s in first:
        sent.discard(s)
    again = len(exchange(list(first), 5.0, sent))
    for s in first:
        s.close()
    rest = [s for s in socks if s not in first]
    later = exchange(rest, 10.0, sent)
    print(f"connections {args.conns} (requests sent {len(sent)}), max_connections {args.limit}")
    print(f"answered while all were open: {len(first)}; their second request answered: {again}")
    print(f"proxy CPU while they were served and held: {cpu_hold:.2f} s")
    print(f"after the first {len(first)} closed, of the {len(rest)} waiting: {len(later)} answered within 10 s")
    ok = 0 < len(first) <= args.limit and again == len(first) and len(later) > 0 and proxy.poll() is None
    for s in socks:
        s.close()
    proxy.terminate()
    app.terminate()
    proxy.wait(timeout=30)
    if OTHER:
        print(f"other answers: {OTHER}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
