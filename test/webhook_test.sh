#!/bin/bash
# Webhook delivery (src/webhook/) against a real HTTPS receiver on
# loopback: a small Python http.server with TLS, its certificate signed by
# a CA made here with openssl and given to the worker through
# wgpeer.webhook_ca_file.  Run as root after `make install`:
#	bash test/webhook_test.sh
#
#	1. The receiver answers the first attempts with 500: the endpoint shows
#	   failing_since, attempts, next_attempt_at and last_error "HTTP 500",
#	   then catches up once the receiver accepts.
#	2. The receiver is down (port closed) while events are written: the
#	   error says the connection failed; it comes back, delivery resumes.
#	3. The delivery worker, a process of its own without CAP_NET_ADMIN, is
#	   killed with kill -9 while the receiver holds a batch it has
#	   recorded (the cluster restarts, as PostgreSQL does after any
#	   crash): the batch is sent again, the same events under
#	   the same idempotency key.  A fast shutdown while the receiver
#	   holds a request does not wait for the request's timeout.
#	4. A wrong CA in wgpeer.webhook_ca_file: last_error says the
#	   certificate did not verify; the right one, and delivery resumes.
#	5. What the receiver got: every event after the endpoint's start,
#	   exactly in order, duplicates only of the same id with the same
#	   content, every request's signature verified; the endpoint with a
#	   kind filter got only its kinds; every endpoint ends healthy.
#	6. A non-admin role may not add a webhook nor read the secrets
#	   (42501); pg_dump keeps the endpoints.
#	7. The time from an event's commit to its delivery, median of a few
#	   (woken on commit; wgpeer.poll_interval is only the safety net).
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/tap.sh

WORK=$(mktemp -d /tmp/wgpeer-webhook.XXXXXX)
chmod 755 "$WORK"
RECEIVER_PID=
cleanup() {
	[ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null || true
	cluster_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- a CA, a server certificate for 127.0.0.1 signed by it, another CA ---
make_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
		-keyout "$WORK/$1.key" -out "$WORK/$1.pem" 2>/dev/null
}
make_ca ca "wgpeer test CA"
make_ca wrong_ca "some other CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName = IP:127.0.0.1\n' >"$WORK/san.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
	-CAcreateserial -days 2 -extfile "$WORK/san.ext" -out "$WORK/server.pem" 2>/dev/null
chmod 644 "$WORK"/*.pem

# --- the receiver ---
# Every request is logged (path, headers, body, whether the signature
# verified with the path's secret); a 2xx records its events as accepted.
# Control files in $WORK: fail_N (answer 500 to the next N requests),
# hang (record the request, then hold it unanswered until the file goes;
# "hung" is created meanwhile).
cat >"$WORK/receiver.py" <<'EOF'
import hashlib, hmac, http.server, json, os, ssl, sys, threading, time

work, port = sys.argv[1], int(sys.argv[2])
secrets = json.load(open(os.path.join(work, "secrets.json")))
lock = threading.Lock()

def log(name, obj):
    with lock, open(os.path.join(work, name), "a") as f:
        f.write(json.dumps(obj) + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ts = self.headers.get("Wgpeer-Timestamp", "")
        want = "v1=" + hmac.new(secrets[self.path].encode(), ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
        sig_ok = hmac.compare_digest(want, self.headers.get("Wgpeer-Signature", ""))
        fresh = abs(time.time() - int(ts or 0)) < 300
        key = self.headers.get("Wgpeer-Event-Id")
        log("requests.log", {"path": self.path, "key": key, "sig_ok": sig_ok,
                             "fresh": fresh, "body": body.decode()})
        with lock:
            fails = sorted(f for f in os.listdir(work) if f.startswith("fail_"))
            n = int(fails[0][5:]) if fails else 0
            if n > 0:
                os.rename(os.path.join(work, fails[0]), os.path.join(work, "fail_%d" % (n - 1)))
        if n > 0:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"not yet")
            return
        for e in json.loads(body)["events"]:
            log("accepted.log", {"path": self.path, "key": key, "event": e,
                                 "received": time.time()})
        if self.path == "/a" and os.path.exists(os.path.join(work, "hang")):
            open(os.path.join(work, "hung"), "w").close()
            while os.path.exists(os.path.join(work, "hang")):
                time.sleep(0.05)
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass                    # a client gone mid-request (the killed worker)

server = Server(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(work, "server.pem"), os.path.join(work, "server.key"))
server.socket = ctx.wrap_socket(server.socket, server_side=True)
open(os.path.join(work, "listening"), "w").close()
server.serve_forever()
EOF
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '{"/a": "secret-of-endpoint-a-0123", "/b": "secret-of-endpoint-b-4567"}' \
	>"$WORK/secrets.json"
receiver_up() {
	rm -f "$WORK/listening"
	python3 "$WORK/receiver.py" "$WORK" "$PORT" 2>>"$WORK/receiver.err" &
	RECEIVER_PID=$!
	wait_until 30 test -e "$WORK/listening"
}
receiver_down() {
	kill "$RECEIVER_PID"
	wait "$RECEIVER_PID" 2>/dev/null || true
	RECEIVER_PID=
}

# --- the cluster (with CAP_NET_ADMIN, as the systemd drop-in gives it) ---
CLUSTER_NET_ADMIN=1
cluster_start "$WORK/pg" \
	"wgpeer.webhook_ca_file = '$WORK/ca.pem'" \
	"wgpeer.webhook_batch_size = 4" \
	"wgpeer.webhook_retry_max = 2s" \
	"wgpeer.webhook_timeout = 60s"
q -c "CREATE EXTENSION wgpeer" >/dev/null
# events that exist before the endpoints are not theirs
q -c "INSERT INTO wgpeer.event (kind, user_id) VALUES ('created', 'before')"
KINDS=(created activated suspended resumed revoked)
N=0
# events N+1 .. N+count, one transaction each, kinds in turn
write_events() {
	local i sql=""
	for ((i = 0; i < $1; i++)); do
		N=$((N + 1))
		sql+="INSERT INTO wgpeer.event (kind, user_id, detail) VALUES ('${KINDS[N % 5]}', 'user-$N', '{\"n\": $N}');"$'\n'
	done
	q <<<"$sql"
}
status() { q -c "SELECT $1 FROM wgpeer.webhook_status WHERE url LIKE '%/a'"; }
caught_up() {
	sql_true "SELECT bool_and(cursor = (SELECT max(event_id) FROM wgpeer.event)
	                          AND last_error IS NULL)
	          FROM wgpeer.webhook_status"
}

: >"$WORK/fail_3"
receiver_up
q -c "SELECT wgpeer.wg_add_webhook('https://127.0.0.1:$PORT/a', 'secret-of-endpoint-a-0123')" >/dev/null
q -c "SELECT wgpeer.wg_add_webhook('https://127.0.0.1:$PORT/b', 'secret-of-endpoint-b-4567',
                                   kinds => ARRAY['revoked', 'suspended'])" >/dev/null
START=$(status cursor)

# 1. failing at first
write_events 10
check "1. the first attempts fail with HTTP 500: failing_since, attempts, next attempt shown" \
	wait_until 60 sql_true "SELECT last_error LIKE 'HTTP 500: not yet%' AND failing_since IS NOT NULL
	                        AND attempts >= 1 AND next_attempt_at IS NOT NULL
	                        FROM wgpeer.webhook_status WHERE url LIKE '%/a'"
check "1. then every endpoint catches up" wait_until 90 caught_up

# 2. the receiver down
receiver_down
write_events 9
check "2. the receiver down: last_error says the connection failed" \
	wait_until 60 sql_true "SELECT last_error LIKE '%onnect%' AND attempts >= 2
	                        FROM wgpeer.webhook_status WHERE url LIKE '%/a'"
receiver_up
check "2. the receiver back: every endpoint catches up" wait_until 90 caught_up

# 3. kill -9 of the delivery worker while the receiver holds a batch
touch "$WORK/hang"
write_events 6
wait_until 60 test -e "$WORK/hung"
HELD_KEY=$(tail -n 1 "$WORK/accepted.log" | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["key"])')
WORKER_PID=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'wgpeer webhook worker'")
check "3. the webhook worker is a process of its own, apart from the apply worker" \
	sql_true "SELECT count(DISTINCT pid) = 2 FROM pg_stat_activity
	          WHERE backend_type IN ('wgpeer webhook worker', 'wgpeer apply worker')"
# CAP_NET_ADMIN is bit 12: the apply worker's alone
net_admin() { printf '%d' $(((0x$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status") >> 12) & 1)); }
same "3. the webhook worker holds no CAP_NET_ADMIN (effective, permitted)" "0 0" \
	"$(net_admin "$WORKER_PID" CapEff) $(net_admin "$WORKER_PID" CapPrm)"
kill -9 "$WORKER_PID"
rm -f "$WORK/hang"
# (while the cluster restarts, psql cannot connect: not an error here)
check "3. after the crash restart every endpoint catches up" \
	wait_until 120 eval "caught_up 2>/dev/null"
check "3. the held batch was sent again under the same idempotency key ($HELD_KEY)" \
	test "$(grep -c "\"path\": \"/a\", \"key\": \"$HELD_KEY\", \"sig_ok\"" "$WORK/requests.log")" -ge 2

# 3b. a fast shutdown while the receiver holds a request: the worker cuts
# the request short instead of waiting for wgpeer.webhook_timeout (made
# 5 minutes here; pg_ctl would give up after 2)
q -c "ALTER SYSTEM SET wgpeer.webhook_timeout = '5min'" -c "SELECT pg_reload_conf()" >/dev/null
rm -f "$WORK/hung"
touch "$WORK/hang"
write_events 1
wait_until 60 test -e "$WORK/hung"
check "3b. a fast shutdown does not wait for the request in flight" \
	cluster_ctl -m fast -w -t 120 stop
rm -f "$WORK/hang"
cluster_run
q -c "ALTER SYSTEM RESET wgpeer.webhook_timeout" -c "SELECT pg_reload_conf()" >/dev/null
check "3b. started again, every endpoint catches up" wait_until 90 caught_up

# 4. a wrong CA, then the right one
q -c "ALTER SYSTEM SET wgpeer.webhook_ca_file = '$WORK/wrong_ca.pem'" -c "SELECT pg_reload_conf()" >/dev/null
write_events 2
check "4. a certificate from another CA: last_error says it did not verify" \
	wait_until 60 sql_true "SELECT last_error LIKE 'TLS: SSL certificate problem%wgpeer.webhook_ca_file%'
	                        FROM wgpeer.webhook_status WHERE url LIKE '%/a'"
echo "   last_error: $(status last_error)"
q -c "ALTER SYSTEM RESET wgpeer.webhook_ca_file" -c "SELECT pg_reload_conf()" >/dev/null
write_events 1
check "4. the right CA again: every endpoint catches up" wait_until 90 caught_up

# 5. what the receiver got
q -c "SELECT event_id, kind FROM wgpeer.event WHERE event_id > $START ORDER BY event_id" \
	>"$WORK/events.tsv"
python3 - "$WORK" >"$WORK/verdict" <<'EOF'
import collections, json, sys
work = sys.argv[1]
events = [l.split("\t") for l in open(work + "/events.tsv").read().split("\n") if l]
requests = [json.loads(l) for l in open(work + "/requests.log")]
accepted = [json.loads(l) for l in open(work + "/accepted.log")]
def verdict(name, ok, detail=""):
    print("%s\t%s\t%s" % (name, "ok" if ok else "FAIL", detail))
for path, kinds in (("/a", None), ("/b", {"revoked", "suspended"})):
    want = [int(i) for i, k in events if kinds is None or k in kinds]
    got = [a["event"] for a in accepted if a["path"] == path]
    ids = [e["event_id"] for e in got]
    first, seen, same = [], {}, True
    for e in got:
        if e["event_id"] in seen:
            same = same and seen[e["event_id"]] == e
        else:
            seen[e["event_id"]] = e
            first.append(e["event_id"])
    dups = len(ids) - len(first)
    verdict(path + " every event exactly once in order", first == want,
            "%d events, %d duplicates" % (len(want), dups))
    verdict(path + " duplicates repeat the same event", same)
    verdict(path + " kinds", all(kinds is None or e["kind"] in kinds for e in got))
    if path == "/a":
        verdict(path + " duplicates happened (the crash test resent)", dups > 0, str(dups))
bodies = collections.defaultdict(set)
for r in requests:
    bodies[(r["path"], r["key"])].add(r["body"])
verdict("one body per idempotency key", all(len(b) == 1 for b in bodies.values()),
        "%d keys, %d requests" % (len(bodies), len(requests)))
verdict("every signature verified", all(r["sig_ok"] and r["fresh"] for r in requests),
        "%d requests" % len(requests))
EOF
while IFS=$'\t' read -r what verdict detail; do
	if [ "$verdict" = ok ]; then ok "5. $what ($detail)"; else not_ok "5. $what ($detail)"; fi
done <"$WORK/verdict"
same "5. every endpoint healthy after all that" "0 0 0" \
	"$(q -c "SELECT count(failing_since), count(last_error), sum(attempts) FROM wgpeer.webhook_status" | tr '\t' ' ')"

# 6. who may
q -c "CREATE ROLE app LOGIN; GRANT USAGE ON SCHEMA wgpeer TO app;
      GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA wgpeer TO app" >/dev/null
as_app() { runuser -u "$WGPEER_USER" -- "$PG_BIN/psql" -X -At -h "$CLUSTER_DIR" -U app -d postgres \
	-v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "\\set VERBOSITY verbose" -c "$1" 2>&1 | head -n 1; }
same "6. a non-admin cannot add a webhook (even with EXECUTE on every function)" \
	"ERROR:  42501: permission denied to add a webhook" \
	"$(as_app "SELECT wgpeer.wg_add_webhook('https://127.0.0.1:$PORT/a', 'secret-of-endpoint-x-0123')")"
same "6. a non-admin cannot read the secrets" \
	"ERROR:  42501: permission denied for table webhook" \
	"$(as_app "SELECT secret FROM wgpeer.webhook")"
check "6. pg_dump keeps the endpoints with their secrets and cursors" \
	bash -c "runuser -u '$WGPEER_USER' -- '$PG_BIN/pg_dump' -h '$CLUSTER_DIR' -U postgres postgres \
		| grep -A3 '^COPY wgpeer.webhook ' | grep -q 'secret-of-endpoint-b-4567'"

# 7. commit to delivery
before=$(wc -l <"$WORK/accepted.log")
for i in 1 2 3 4 5 6 7; do
	write_events 1
	wait_until 30 caught_up
done
python3 - "$WORK" "$before" <<'EOF'
import datetime, json, statistics, sys
lines = open(sys.argv[1] + "/accepted.log").read().split("\n")[int(sys.argv[2]):]
ms = []
for l in lines:
    a = json.loads(l) if l else None
    if a and a["path"] == "/a":
        at = datetime.datetime.fromisoformat(a["event"]["at"]).timestamp()
        ms.append((a["received"] - at) * 1000)
print("   commit to delivery, woken on commit: median %.1f ms over %d events "
      "(polling alone: up to wgpeer.poll_interval, 10 s by default)" % (statistics.median(ms), len(ms)))
EOF

tap_summary webhook
