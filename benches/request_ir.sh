#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: a count, not a
# time, so two builds (release-profile settings, a code change) compare on a noisy
# shared machine where wrk's req/s moves by ±10 % between runs.
#
#   bash benches/request_ir.sh [BINARY] [N1] [N2]
#
# Starts an nginx upstream and BINARY (default target/release/switchyard) under
# callgrind on loopback, sends N1 and then (in a second run) N2 keep-alive requests
# from one client, and prints (Ir(N2) - Ir(N1)) / (N2 - N1): start-up cancels out.
# Needs nginx, valgrind and python3 (Debian: nginx-light valgrind).
set -euo pipefail

BIN=${1:-target/release/switchyard}
N1=${2:-500}
N2=${3:-3000}
BIN=$(realpath "$BIN")
TMP=$(mktemp -d /tmp/sy-ir-XXXXXX)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
UP=$(free_port)
PROXY=$(free_port)
ADMIN=$(free_port)

cat >"$TMP/up.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/up.pid; error_log $TMP/up.err;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
       uwsgi_temp_path $TMP; scgi_temp_path $TMP;
       server { listen 127.0.0.1:$UP; location / { return 200 "blue!"; } } }
EOF
cat >"$TMP/sy.toml" <<EOF
[listener]
address = "127.0.0.1:$PROXY"
[admin]
address = "127.0.0.1:$ADMIN"
[runtime]
worker_threads = 1
[state]
file = "$TMP/state.json"
[[service]]
name = "app"
[service.traffic]
active = "blue"
[service.pools.blue]
backends = ["127.0.0.1:$UP"]
EOF
cat >"$TMP/client.py" <<'EOF'
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):  # the proxy starts slowly under valgrind
    try:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/", headers={"Host": "app"})
        c.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
for _ in range(n - 1):
    c.request("GET", "/", headers={"Host": "app"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
EOF

nginx -c "$TMP/up.conf" &
NGINX=$!
trap 'kill -QUIT $NGINX 2>/dev/null || true; rm -rf "$TMP"' EXIT

count() {
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$1" "$BIN" serve -c "$TMP/sy.toml" --reset-state \
        --access-log off >"$TMP/sy.$1.log" 2>&1 &
    local pid=$!
    python3 "$TMP/client.py" "$PROXY" "$1"
    kill -TERM $pid
    wait $pid || true
    callgrind_annotate "$TMP/cg.$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

A=$(count "$N1")
B=$(count "$N2")
echo "$BIN: $(((B - A) / (N2 - N1))) user-space instructions per request"
