#!/usr/bin/env python3
"""TLS termination: switchyard against nginx, one worker each, over loopback.

Both proxies terminate TLS with one ECDSA P-256 certificate (made with openssl at
run time, key in PKCS#8 PEM) in front of one upstream (compare.py's `nginx_upstream`,
a 5-byte body), keep-alive to it. Per proxy, rounds in alternating order, medians:

1. keep-alive HTTP/1.1 over TLS, `wrk -t1 -c64 -d<secs>s https://localhost:PORT/`:
   req/s, p50/p99, the proxy's CPU µs per request (user + sys from /proc, process
   and children), wrk's own CPU (is the client the bottleneck?);
2. handshakes: the same with `-H 'Connection: close'`. wrk 4.1 reconnects with
   SSL_clear(), which keeps the session, so plain wrk *resumes* ("resumed"); "full"
   adds an LD_PRELOAD shim (built here with cc) dropping it. An nginx logging
   $ssl_session_reused checks both;
3. RSS with N idle TLS keep-alive connections (python ssl, one GET answered on
   each), KiB per connection above the RSS just before (after a warm-up request).

The URL names `localhost` (the certificate's name): with `127.0.0.1` wrk sends the
IP as SNI (which TLS forbids; switchyard ignores it, older builds logged a warning
per handshake). nginx gets `ssl_protocols TLSv1.2
TLSv1.3` (1.22's default stops at TLS 1.2).

Usage:  python3 benches/tls_compare.py --switchyard target/release/switchyard
            [--extra NAME=BIN ...] [--seconds 10] [--rounds 3] [--idle 2000]
            [--quick] [--out FILE]
"""

import argparse
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port  # noqa: E402
from compare import LUA, Proc, ensure_tools, machine, nginx_upstream, sh, switchyard_config, which  # noqa: E402

KINDS = ("keep-alive", "resumed", "full")
CLIENT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # for the idle connections: no verification, HTTP/1.1
CLIENT.check_hostname, CLIENT.verify_mode = False, ssl.CERT_NONE
CLIENT.set_alpn_protocols(["http/1.1"])
SHIM = """#define _GNU_SOURCE
#include <dlfcn.h>
typedef struct ssl_st SSL; int SSL_set_session(SSL *s, void *session);
int SSL_clear(SSL *s) { /* wrk reconnects with SSL_clear(), which keeps the session: drop it first */
    static int (*real)(SSL *); if (!real) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    SSL_set_session(s, 0); return real(s); }
"""


def prepare(tmp):
    """The certificate, its key (PKCS#8 PEM) and the no-resumption shim for wrk."""
    cert, key, src, shim = (os.path.join(tmp, f) for f in ("cert.pem", "key.pem", "noresume.c", "noresume.so"))
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=localhost", "-days", "2", "-keyout", key, "-out", cert])
    with open(key) as f:
        if not f.read().startswith("-----BEGIN PRIVATE KEY-----"):
            raise RuntimeError(f"{key} is not PKCS#8 PEM")
    with open(src, "w") as f:
        f.write(SHIM)
    sh(["cc", "-shared", "-fPIC", "-O2", "-o", shim, src, "-ldl"])
    return cert, key, shim


def warnings_of(proc):
    """Warnings and errors among the last lines the proxy logged (compare.Proc reads its stderr)."""
    return [line.decode(errors="replace").strip() for line in proc.log
            if re.search(rb"WARN|ERROR|\[(warn|error|crit|alert|emerg)\]", line)]


def switchyard(tmp, name, binary, up, cert, key):
    d = tempfile.mkdtemp(dir=tmp)
    conf, port = os.path.join(d, "sy.toml"), free_port()
    with open(conf, "w") as f:
        tls = f'[listener.tls]\naddress = "127.0.0.1:{port}"\ncert = "{cert}"\nkey = "{key}"'
        f.write(switchyard_config(1, free_port(), free_port(), up, up, tls))
    check = subprocess.run([binary, "check", "-c", conf], cwd=d, capture_output=True, text=True, timeout=30)
    if check.returncode:  # e.g. the key or the certificate is not accepted
        raise RuntimeError(f"{name} check failed:\n{check.stdout}{check.stderr}")
    args = [binary, "serve", "-c", conf, "--reset-state"]
    if "--access-log" in sh([binary, "serve", "--help"]):
        args += ["--access-log", "off"]
    return Proc(name, args, port, cwd=d)


def nginx_tls(tmp, up, cert, key, log=None):
    d = tempfile.mkdtemp(dir=tmp)
    conf, port = os.path.join(d, "nginx.conf"), free_port()
    access = f'log_format r "$ssl_session_reused"; access_log {log} r;' if log else "access_log off;"
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 20000; }}
http {{ {access} client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d}; keepalive_requests 1000000;
  upstream up {{ server 127.0.0.1:{up}; keepalive 128; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{port} ssl backlog=4096; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    return Proc("nginx", [which("nginx"), "-c", conf, "-p", d], port)


def wrk(proc, seconds, tmp, shim=None):
    """wrk -t1 -c64 against `proc`. shim None: keep-alive; "": Connection: close; a path: that and the shim."""
    script = os.path.join(tmp, "report.lua")
    with open(script, "w") as f:
        f.write(LUA)
    argv = ["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", script] + ([] if shim is None else ["-H", "Connection: close"])
    (u0, s0), r0, t0 = proc.cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    out = subprocess.run(argv + [f"https://localhost:{proc.port}/"], capture_output=True, text=True, check=True,
                         timeout=seconds + 60, env={**os.environ, "LD_PRELOAD": shim} if shim else None).stdout
    r1, t1, (u1, s1) = resource.getrusage(resource.RUSAGE_CHILDREN), time.time(), proc.cpu_seconds()
    m = dict(kv.split("=") for kv in re.search(r"^SY (.*)$", out, re.M).group(1).split())
    n = max(int(m["requests"]), 1)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": int(m["p50"]),
            "p99": int(m["p99"]), "cpu_us": (u1 - u0 + s1 - s0) * 1e6 / n,
            "wrk_cpu": 100 * (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / (t1 - t0),
            "errors": sum(int(m[k]) for k in ("connect", "read", "write", "timeout", "status"))}


def get(port, deadline, session=None):
    """A TLS connection (no verification, ALPN http/1.1) that has sent a GET and read the whole (small) answer."""
    s = CLIENT.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost",
                        session=session)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    buf = b""
    while time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed before the answer")
        buf += chunk
        head, sep, body = buf.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if sep and length and len(body) >= int(length.group(1)):
            return s
    raise RuntimeError("no complete answer in time")


def idle_rss(proc, n, budget=120.0):
    """(RSS before, RSS with the connections open, connections opened), KiB."""
    deadline = time.time() + budget
    get(proc.port, deadline).close()  # warm up: first TLS connection, first upstream connection
    time.sleep(0.5)
    base, socks = proc.rss_kib(), []
    try:
        while len(socks) < n and time.time() < deadline:
            socks.append(get(proc.port, deadline))
        time.sleep(1.0)
        return base, proc.rss_kib(), len(socks)
    finally:
        for s in socks:
            s.close()


def negotiated(port):
    """What openssl s_client (OpenSSL defaults, as in wrk) negotiates; whether the server resumes a session."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15).stdout
    lines = [" ".join(l.split()) for l in out.splitlines() if re.search(r"^New,|Server Temp Key|Peer signature", l)]
    first = get(port, time.time() + 15)  # the answer has been read, so the session ticket(s) too
    second = get(port, time.time() + 15, first.session)
    resumed = second.session_reused
    first.close()
    second.close()
    return "; ".join(lines) + f"; a second python ssl connection resumes the first's session: {resumed}"


def resumption_check(tmp, up, cert, key, shim):
    """{run: (resumed, total)} handshakes of wrk with Connection: close, from nginx's $ssl_session_reused."""
    counts = {}
    for name, s in (("plain wrk", ""), ("wrk + shim", shim)):
        log = os.path.join(tmp, f"reused-{len(counts)}.log")
        p = nginx_tls(tmp, up, cert, key, log=log)
        try:
            wrk(p, 1, tmp, s)
        finally:
            p.stop()
        with open(log) as f:
            marks = f.read().split()
        counts[name] = (marks.count("r"), len(marks))
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switchyard", required=True, help="switchyard binary")
    ap.add_argument("--extra", action="append", default=[], help="NAME=BIN: another switchyard binary or wrapper")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=2000, help="idle TLS connections for the RSS check (0: skip)")
    ap.add_argument("--quick", action="store_true", help="one round of 5 s")
    ap.add_argument("--out", help="also write the markdown table to FILE")
    args = ap.parse_args()
    seconds, rounds = (5, 1) if args.quick else (args.seconds, args.rounds)
    ensure_tools()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # before starting anything: children inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 1000)), hard))
    tmp = tempfile.mkdtemp(prefix="sy-tls-")
    cert, key, shim = prepare(tmp)
    up = nginx_upstream(tmp, "blue!")
    bins = [("switchyard", args.switchyard)] + [tuple(e.split("=", 1)) for e in args.extra]
    makers = [lambda n=n, b=b: switchyard(tmp, n, b, up.port, cert, key) for n, b in bins]
    makers.append(lambda: nginx_tls(tmp, up.port, cert, key))
    results, notes, warnings, load = {}, {}, [], os.getloadavg()[0]
    try:
        resumed = resumption_check(tmp, up.port, cert, key, shim)
        print(f"resumed/total handshakes of wrk -H 'Connection: close' against nginx: {resumed}", flush=True)
        for r in range(rounds):
            for make in (makers if r % 2 == 0 else makers[::-1]):
                p = make()
                try:
                    notes.setdefault(p.name, negotiated(p.port))
                    rss = idle_rss(p, args.idle) if args.idle else None  # first, on the fresh process
                    wrk(p, 1, tmp)  # warm up
                    runs = [wrk(p, seconds, tmp, s) for s in (None, "", shim)]
                finally:
                    p.stop()
                logged = warnings_of(p)
                if logged:
                    warnings.append(f"{p.name}, round {r + 1}: {len(logged)} on stderr, last `{logged[-1][:200]}`")
                results.setdefault(p.name, []).append((runs, rss))
                print(f"round {r + 1} {p.name}: " + "; ".join(
                    f"{kind} {x['rps']:.0f} req/s p50 {x['p50']}us p99 {x['p99']}us {x['cpu_us']:.1f} cpu-us/req "
                    f"wrk {x['wrk_cpu']:.0f}% errors {x['errors']}" for kind, x in zip(KINDS, runs)) + f"; rss {rss}",
                    flush=True)
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    table = render(results, notes, warnings, resumed, seconds, rounds, args.idle, load)
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


def render(results, notes, warnings, resumed, seconds, rounds, idle, load):
    cores, v = machine()
    med = statistics.median
    lines = [f"# TLS termination: switchyard vs nginx ({cores}; kernel {v['kernel']}; {v['nginx']}; {v['wrk']})", "",
             f"`python3 benches/tls_compare.py {' '.join(sys.argv[1:])}`: {rounds} alternating round(s) of {seconds} s "
             "per run; one worker each; ECDSA P-256 certificate; loopback; one nginx upstream (5-byte body); "
             "wrk -t1 -c64. Each cell: req/s; p50 / p99 latency (µs); the proxy's CPU per request (user + sys over "
             "the run / requests); wrk's own CPU (% of a core). Medians over rounds. Load average at start: "
             f"{load:.2f}.", "",
             "| proxy | keep-alive | handshake, resumed | handshake, full | errors | RSS before (KiB) | "
             f"RSS with {idle} idle TLS conns (KiB) | KiB/conn |", "|---|---|---|---|---|---|---|---|"]
    for name, rounds_ in results.items():
        cells = []
        for i in range(len(KINDS)):
            m = {k: med([runs[i][k] for runs, _ in rounds_]) for k in ("rps", "p50", "p99", "cpu_us", "wrk_cpu")}
            cells.append(f"{m['rps']:.0f} req/s; {m['p50']:.0f} / {m['p99']:.0f}; {m['cpu_us']:.1f} µs; "
                         f"wrk {m['wrk_cpu']:.0f}%")
        cells.append("/".join(str(sum(runs[i]["errors"] for runs, _ in rounds_)) for i in range(len(KINDS))))
        rss = [r for _, r in rounds_ if r]
        if rss:
            base, full, n = med([x[0] for x in rss]), med([x[1] for x in rss]), min(x[2] for x in rss)
            cells += [f"{base:.0f}", f"{full:.0f}" + ("" if n == idle else f" (only {n} opened)"),
                      f"{(full - base) / max(n, 1):.1f}"]
        else:
            cells += ["-", "-", "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Notes:", "",
              "- Handshake runs add `-H 'Connection: close'`. wrk reconnects with SSL_clear(), which keeps the "
              "session, so plain wrk resumes; \"full\" runs wrk with an LD_PRELOAD shim dropping it. Resumed / total "
              "handshakes seen by an nginx logging `$ssl_session_reused`: "
              + ", ".join(f"{k} {r} / {t}" for k, (r, t) in resumed.items()) + ".",
              "- nginx: `ssl_protocols TLSv1.2 TLSv1.3` (1.22 defaults to at most 1.2); session settings at their "
              "defaults (ssl_session_tickets on, ssl_session_cache none: no shared cache, ssl_session_timeout 5m); "
              "ciphers and curves at their defaults. switchyard: rustls (ring), tickets + in-memory session cache.",
              "- wrk's URL names `localhost` (SNI `localhost`); with `127.0.0.1` wrk would send an IP address as SNI.",
              "- Errors: wrk socket errors + non-2xx (keep-alive/resumed/full), summed over rounds.",
              "- RSS: process and children from /proc, after one warm-up request, then 1 s after the last of N "
              "idle connections opened (python ssl, one GET answered on each).",
              "- Negotiated (`openssl s_client`, OpenSSL defaults as in wrk):"]
    lines += [f"  - {name}: {desc}" for name, desc in notes.items()]
    lines += [f"- Warnings and errors logged by {w}" for w in warnings]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
