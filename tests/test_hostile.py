"""Hostile clients (issue 9): idle and slow connections, broken TLS, huge and
malformed requests, spoofed headers and forbidden addresses; and (issue 27)
a flood of the public TLS listener, which must leave the API listener
answering, and a duplicated certificate header.

Everything runs on the loopback, bounded in count and in time. Each test
also checks that well-behaved clients keep getting correct answers while the
hostile ones are at it (`assert_served`). The basic trusted_proxies and
api_allow cases are in test_auth.py; here are the hostile variations.
"""
import json
import os
import random
import re
import resource
import selectors
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest

from fixtures.cli import admin
from fixtures.daemon import BUILD, until

REGNO = "110105000009"
TIMEOUT = 2  # request_timeout of these tests' daemons, seconds
SLACK = 3    # how late past request_timeout a cut may come (2 busy cores)


# --- helpers ------------------------------------------------------------------

def bind_ok(db, pki, leaf="ec-ok"):
    """leaf's key approved for an active unit: its outcome is OK."""
    admin(db.conninfo, "office", "add", "FT01", "--name", "丰台管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "丰台测试单位", "--office", "FT01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", REGNO,
          "--ticket", "T-H1")


def tls_context(pki, leaf="ec-ok"):
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    if leaf:
        ctx.load_cert_chain(pki.leaf(leaf)["chain"], pki.leaf(leaf)["key"])
    return ctx


def login(d, pki, leaf="ec-ok", timeout=5):
    """GET /v1/login over a new TLS connection; (status, decoded JSON)."""
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=timeout)
    with tls_context(pki, leaf).wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                  b"Connection: close\r\n\r\n")
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def recv_all(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def assert_served(d, pki, within=2.0):
    """A good API client and a good TLS client both get the right answer, fast."""
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    t0 = time.monotonic()
    r = d.verify_bundle(chain)
    assert r.status == 200 and r.json()["outcome"] == "OK", r.body
    status, body = login(d, pki)
    assert (status, body["outcome"]) == (200, "OK"), body
    elapsed = time.monotonic() - t0
    assert elapsed < within, f"good clients took {elapsed:.2f} s"


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {n}")


def open_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    return socks


def wait_closed(socks, deadline):
    """Waits until the server has closed each socket (EOF or reset) or the
    deadline passes; returns {socket: seconds until closed} for the closed."""
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = {}
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                if s.recv(65536):
                    continue  # an alert or a 408: wait for the close itself
            except BlockingIOError:
                continue
            except OSError:
                pass
            closed[s] = time.monotonic() - t0
            sel.unregister(s)
    sel.close()
    return closed


def close_all(socks):
    for s in socks:
        s.close()


def worker_pids(d):
    out = subprocess.run(["pgrep", "-P", str(d.proc.pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def sanitized():
    return b"__asan_init" in (BUILD / "certregd").read_bytes()


def client_hello():
    """The bytes of a real TLS ClientHello (TLS 1.2 and 1.3 offered)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_side=False)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def raw_request(port, data, timeout=5):
    """Sends data on a new connection, half-closes, returns all the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading it all
        try:
            return recv_all(s)
        except ConnectionResetError:
            return b""


def status_of(reply):
    if not reply.startswith(b"HTTP/"):
        return None
    return int(reply.split(b" ", 2)[1])


# --- idle and slow connections ------------------------------------------------

def test_idle_connections_are_cut_at_request_timeout(certregd, db, pki):
    """1,000 silent connections on each listener: they cost the good clients
    nothing, and each is closed at request_timeout."""
    raise_fd_limit(4096)
    bind_ok(db, pki)
    d = certregd(db, server={"request_timeout": TIMEOUT})
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    t0 = time.monotonic()
    idle = open_idle(api_port, 1000) + open_idle(d.tls_port, 1000)
    assert_served(d, pki)
    closed = wait_closed(idle, t0 + TIMEOUT + SLACK + 2)
    try:
        assert len(closed) == len(idle), \
            f"{len(idle) - len(closed)} of {len(idle)} idle connections still open"
        latest = max(closed.values())
        assert latest < TIMEOUT + SLACK, f"last idle connection cut after {latest:.1f} s"
    finally:
        close_all(idle)
    assert_served(d, pki)


def drip(pairs, seconds, interval=0.5, during=None):
    """Sends each (socket, payload) pair's payload one byte per interval for
    seconds; calls during() about once a second. Returns {socket: seconds
    until the server cut it}."""
    t0 = time.monotonic()
    cut = {}
    pos = 0
    next_check = t0 + 1
    while time.monotonic() - t0 < seconds:
        for s, payload in pairs:
            if s in cut:
                continue
            try:
                if s.recv(65536) == b"":
                    cut[s] = time.monotonic() - t0
                    continue
            except BlockingIOError:
                pass
            except OSError:
                cut[s] = time.monotonic() - t0
                continue
            try:
                s.send(payload[pos % len(payload):pos % len(payload) + 1])
            except BlockingIOError:
                pass
            except OSError:
                cut[s] = time.monotonic() - t0
        pos += 1
        if during is not None and time.monotonic() >= next_check:
            during()
            next_check += 1
        time.sleep(interval)
    return cut


SLOW_HTTP = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 4000


def test_slowloris_does_not_starve_good_clients(certregd, db, pki):
    """1,000 byte-at-a-time clients on each listener (request line and
    headers on the API, the ClientHello on TLS): good clients are served
    throughout, and the daemon survives."""
    raise_fd_limit(4096)
    bind_ok(db, pki)
    d = certregd(db, server={"request_timeout": TIMEOUT})
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    api = open_idle(api_port, 1000)
    tls = open_idle(d.tls_port, 1000)
    hello = client_hello()
    served = []
    try:
        pairs = [(s, SLOW_HTTP) for s in api] + [(s, hello) for s in tls]
        drip(pairs, 3 * TIMEOUT, during=lambda: served.append(assert_served(d, pki)))
    finally:
        close_all(api + tls)
    assert len(served) >= 3 * TIMEOUT - 1
    assert_served(d, pki)


def test_slowloris_is_cut_at_request_timeout(certregd, db, pki):
    d = certregd(db, server={"request_timeout": TIMEOUT})
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    api = open_idle(api_port, 50)
    tls = open_idle(d.tls_port, 50)
    try:
        hello = client_hello()
        cut = drip([(s, SLOW_HTTP) for s in api] + [(s, hello) for s in tls], TIMEOUT + SLACK)
    finally:
        close_all(api + tls)
    assert len(cut) == len(api) + len(tls), f"{len(api) + len(tls) - len(cut)} never cut"


# --- broken TLS ---------------------------------------------------------------

def test_garbage_instead_of_a_client_hello(certregd, db, pki):
    """Plain HTTP, random bytes, a record header announcing 16 MiB, an SSLv2
    hello: each connection is closed at once; nothing crashes."""
    bind_ok(db, pki)
    d = certregd(db, server={"request_timeout": TIMEOUT})
    rnd = random.Random(9)
    garbage = [
        b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\n\r\n",
        bytes(rnd.getrandbits(8) for _ in range(4096)),
        b"\x16\x03\x01\xff\xff" + b"\x01" * 300,          # oversized handshake record
        b"\x80\x2e\x01\x00\x02\x00\x15" + b"\x00" * 46,   # SSLv2 ClientHello
        client_hello()[:5] + b"\x00" * 600,                # right header, zeroed body
        b"\x15\x03\x03\x00\x02\x02\x28",                   # a fatal alert first
    ]
    for i in range(60):
        t0 = time.monotonic()
        raw_request(d.tls_port, garbage[i % len(garbage)])
        assert time.monotonic() - t0 < TIMEOUT + SLACK
        if i % 20 == 0:
            assert_served(d, pki)
    assert_served(d, pki)


def test_handshake_abandoned_midway(certregd, db, pki):
    """200 clients send a ClientHello, read the server's flight, and stop:
    each is cut at request_timeout; good clients are served meanwhile."""
    bind_ok(db, pki)
    d = certregd(db, server={"request_timeout": TIMEOUT})
    hello = client_hello()
    t0 = time.monotonic()
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", d.tls_port), timeout=5)
        s.sendall(hello)
        assert s.recv(5)[:1] == b"\x16"  # the server's handshake flight began
        s.setblocking(False)
        socks.append(s)
    assert_served(d, pki)
    try:
        closed = wait_closed(socks, t0 + TIMEOUT + SLACK + 3)
        assert len(closed) == len(socks), f"{len(socks) - len(closed)} still open"
    finally:
        close_all(socks)
    assert_served(d, pki)


def test_renegotiation_is_refused(certregd, db, pki):
    """A TLS 1.2 client asks to renegotiate (openssl s_client, 'R'): the
    server refuses (SSL_OP_NO_RENEGOTIATION), and keeps serving."""
    bind_ok(db, pki)
    d = certregd(db)
    leaf = pki.leaf("ec-ok")
    p = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{d.tls_port}", "-tls1_2",
         "-servername", "localhost", "-cert", leaf["pem"], "-key", leaf["key"],
         "-CAfile", str(pki.dir / "ca/server-ca.pem"), "-legacy_renegotiation"],
        input="R\nGET /v1/login HTTP/1.1\nHost: localhost\nAccept: application/json\n\n",
        capture_output=True, text=True, timeout=20)
    out = p.stdout + p.stderr
    assert "RENEGOTIATING" in out, out
    print("\nrenegotiation: " + " | ".join(
        line for line in out.splitlines() if "RENEGOT" in line or "renegot" in line.lower()))
    # The server answers the renegotiation request with a no_renegotiation
    # alert: OpenSSL's client reports it as "no renegotiation".
    assert "no renegotiation" in out.lower(), out
    assert_served(d, pki)


# --- bodies and malformed requests --------------------------------------------

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_10_mib_body_gets_413_at_once(certregd, db, pki, framing):
    bind_ok(db, pki)
    d = certregd(db)
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    size = 10 * 1024 * 1024
    head = (b"POST /v1/verify HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/pem-certificate-chain\r\n")
    head += (b"Content-Length: %d\r\n\r\n" % size if framing == "content-length"
             else b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"A" * 65536
    if framing == "chunked":
        chunk = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    t0 = time.monotonic()
    reply = b""
    with socket.create_connection(("127.0.0.1", api_port), timeout=5) as s:
        s.sendall(head)
        s.setblocking(False)
        sent = 0
        while sent < size and time.monotonic() - t0 < 10 and b"\r\n\r\n" not in reply:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
            try:
                reply += s.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
        s.setblocking(True)
        s.settimeout(5)
        try:
            reply += s.recv(65536)
        except OSError:
            pass
    elapsed = time.monotonic() - t0
    assert status_of(reply) == 413, reply[:200]
    # "At once": long before 10 MiB could have been read (64 KiB is the limit).
    assert elapsed < 1.0, f"413 after {elapsed:.2f} s"
    # (sent counts what the kernel buffered, not what the server read.)
    print(f"\n413 for a 10 MiB {framing} body after {elapsed * 1000:.0f} ms, "
          f"{sent} bytes buffered by then")
    assert_served(d, pki)


def malformed_requests(pki):
    ec = open(pki.leaf("ec-ok")["pem"]).read()
    j = json.dumps

    def post(body, ctype="application/json", extra=b""):
        if isinstance(body, str):
            body = body.encode()
        return (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype.encode() +
                b"\r\nContent-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)

    return [
        post("not json"),
        post(j({"chain": [ec]})),
        post(j({"certificate": 42})),
        post(j({"certificate": ec, "chain": "not-an-array"})),
        post(j({"certificate": ec, "chain": [1, 2]})),
        post('{"certificate": "a", "certificate": "b"}'),
        post(j([ec])),
        post('{"certificate": "' + "\\ud800" * 50 + '"}'),
        post("[" * 5000 + "]" * 5000),
        post(ec, "text/plain"),
        post("", "application/pem-certificate-chain"),
        post(ec, "application/x-www-form-urlencoded"),
        b"DELETE /v1/verify HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PUT /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /v1/verify HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/auth HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /v1/nosuch HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/verify%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 20000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nBroken header line\r\n\r\n",
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"\x00\x01\x02 garbage\r\n\r\n",
    ]


def test_malformed_requests_are_4xx_and_leak_nothing(certregd, db, pki):
    """1,000 malformed requests (27 kinds, round robin): every one gets a 4xx
    (or, for a request line evhttp cannot parse at all, a closed
    connection; for an unknown method, 501); the workers' resident memory
    does not grow."""
    bind_ok(db, pki)
    d = certregd(db)
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    requests = malformed_requests(pki)
    # Warm up (about 1,000 requests, both workers): first-use allocations and
    # the allocator's high-water mark are not leaks.
    for i, req in enumerate(requests * 40):
        raw_request(api_port, req)
        if i % 100 == 0:
            assert_served(d, pki)  # the first TLS handshakes load OpenSSL's decoders
    pids = worker_pids(d)
    assert len(pids) == 2, pids
    before = {p: rss_kib(p) for p in pids}
    statuses = {}
    for i in range(1000):
        req = requests[i % len(requests)]
        st = status_of(raw_request(api_port, req))
        statuses.setdefault(st, 0)
        statuses[st] += 1
        # 501 is HTTP's answer to a method nobody has heard of (RFC 9110 15.6.2).
        assert st is None or 400 <= st < 500 or (st == 501 and req.startswith(b"BREW")), \
            (st, req[:120])
        if i % 250 == 0:
            assert_served(d, pki)
    after = {p: rss_kib(p) for p in pids}
    assert worker_pids(d) == pids, "a worker was replaced"
    assert statuses.get(None, 0) <= 1000 // len(requests) * 3, statuses
    growth = {p: after[p] - before[p] for p in pids}
    print(f"statuses={statuses} rss_kib_before={before} after={after} growth={growth}")
    if not sanitized():  # ASan's quarantine holds freed memory on purpose
        assert max(growth.values()) < 2048, f"RSS grew by {growth} KiB"
    assert_served(d, pki)


# --- spoofing and access ------------------------------------------------------

def escaped(pki, leaf):
    return urllib.parse.quote(open(pki.leaf(leaf)["pem"]).read(), safe="")


def test_spoofed_certificate_header_variants_are_ignored(certregd, db, pki):
    """With trusted_proxies a TEST-NET address, no spelling of the header
    from the loopback makes /v1/auth trust it; /v1/verify still answers."""
    bind_ok(db, pki)
    d = certregd(db, server={"trusted_proxies": "192.0.2.1/32"})
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    good = escaped(pki, "ec-ok").encode()
    variants = [
        b"X-SSL-Client-Cert: " + good,
        b"x-ssl-client-cert: " + good,
        b"X-SSL-CLIENT-CERT: " + good,
        b"X-SSL-Client-Cert: " + good + b"\r\nX-SSL-Client-Cert: " + good,
        b"X-SSL-Client-Cert:\r\n " + good,  # obsolete line folding
        b"X-Forwarded-For: 192.0.2.1\r\nX-Real-IP: 192.0.2.1\r\nX-SSL-Client-Cert: " + good,
    ]
    for v in variants:
        reply = raw_request(api_port, b"GET /v1/auth HTTP/1.1\r\nHost: x\r\n" + v +
                            b"\r\nConnection: close\r\n\r\n")
        head = reply.partition(b"\r\n\r\n")[0].lower()
        assert b"x-certreg-unit" not in head, reply
        if status_of(reply) != 400:
            assert status_of(reply) == 403, reply
            assert b"x-certreg-outcome: no_certificate" in head, reply
        r = d.verify_bundle(open(pki.leaf("ec-ok")["chain"]).read())
        assert r.json()["outcome"] == "OK"


def test_v1_from_outside_api_allow_is_403_whatever_the_path_spelling(certregd, db, pki):
    bind_ok(db, pki)
    d = certregd(db, server={"api_allow": "192.0.2.0/24"})
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    body = open(pki.leaf("ec-ok")["chain"]).read().encode()
    paths = [b"/v1/verify", b"/v1/verify?x=1", b"http://localhost/v1/verify",
             b"/v1/./verify", b"/v1/../v1/verify", b"//v1/verify", b"/V1/verify",
             b"/%76%31/verify", b"/v1/verify#f", b"/v1//verify"]
    for path in paths:
        reply = raw_request(api_port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Type: application/pem-certificate-chain\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(body) + body)
        st = status_of(reply)
        assert st in (400, 403, 404), (path, reply[:300])
        assert b'"outcome"' not in reply, (path, reply[:300])
    # The TLS listener is not an API route: logins go on.
    status, doc = login(d, pki)
    assert (status, doc["outcome"]) == (200, "OK")


# Outsiders' bodies (review of the API listener): the head shows what the answer
# will be, so the body is never awaited.
OUTSIDER_BODIES = [
    # The finding as reported: an open path, a body to trickle.
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\nA", 405),
    (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\nA", 403),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\nA", 413),
    (b"POST /v1/challenge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffff\r\nA", 403),
]


def probe_healthz(port, source="127.0.0.1", timeout=3):
    """GET /healthz on a new connection: (status or None when the server
    closed it unanswered, seconds)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(source, 0)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = recv_all(s)
    except OSError:
        reply = b""
    return status_of(reply), time.monotonic() - t0


def test_outsiders_bodies_cannot_fill_the_api_listener(certregd, db, pki):
    """One worker, max_connections_api = 4, api_allow = 127.0.0.2 only, so
    127.0.0.1 is an outsider. Four outsiders send a request head announcing
    a body (the finding: POST /healthz with Content-Length: 65536) and
    trickle its bytes. Each gets its answer from the head at once (405,
    403, 413, 403), and the connection closes without the body being read;
    a fifth client's GET /healthz is answered 200 throughout. On the old
    code the four waited for their bodies, could not be evicted, and the
    fifth was refused. An allowed peer's POST with a body is served."""
    bind_ok(db, pki)
    d = certregd(db, server={"workers": 1, "max_connections_api": 4, "request_timeout": 30,
                             "api_allow": "127.0.0.2/32"})
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    held = []
    try:
        for head, _ in OUTSIDER_BODIES:
            s = socket.create_connection(("127.0.0.1", api_port), timeout=5)
            s.sendall(head)
            held.append(s)
        time.sleep(0.3)
        for _ in range(3):
            status, took = probe_healthz(api_port)
            assert status == 200 and took < 1.0, \
                f"GET /healthz beside four body-trickling outsiders: {status} after {took:.2f} s"
            for s in held:
                try:
                    s.send(b"A")  # a byte now and then, as the finding's client did
                except OSError:
                    pass
            time.sleep(1)
        for s, (head, want) in zip(held, OUTSIDER_BODIES):
            s.settimeout(5)
            try:
                reply = recv_all(s)
            except ConnectionResetError:
                reply = b""
            assert status_of(reply) == want, (head, reply[:300])
            assert b'"outcome"' not in reply, reply[:300]
    finally:
        close_all(held)
    # Each close is logged with its answer, or as evicted: a connection
    # lingering after its answer is idle, and the probe made room with it.
    # A lingering one is logged when the worker reads our close (or its
    # linger ends), in its own time: polled.
    answered = {("forbidden", "this address is not in api_allow"),
                ("method_not_allowed", "use GET"),
                ("payload_too_large", "this endpoint takes no body")}

    def logged():
        return re.findall(r'event=conn_closed listener=api peer=127\.0\.0\.1 reason=(\w+)'
                          r'(?: detail="([^"]*)")?', d.log())
    until(lambda: sum(c in answered or c[0] == "evicted" for c in logged()) >= 4, why=d.log)
    log = d.log()
    closes = logged()
    assert sum(c in answered or c[0] == "evicted" for c in closes) >= 4, log
    assert any(c in answered for c in closes), log
    # An allowed peer: its body is read and decided; a body where none is
    # taken is refused from the head alike.
    chain = open(pki.leaf("ec-ok")["chain"]).read().encode()
    with socket.create_connection(("127.0.0.1", api_port), timeout=5,
                                  source_address=("127.0.0.2", 0)) as s:
        s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Type: application/pem-certificate-chain\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(chain) + chain)
        reply = recv_all(s)
    assert status_of(reply) == 200 and b'"outcome":"OK"' in reply, reply[:300]
    with socket.create_connection(("127.0.0.1", api_port), timeout=5,
                                  source_address=("127.0.0.2", 0)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        reply = recv_all(s)
    assert status_of(reply) == 413, reply[:300]
    assert probe_healthz(api_port, source="127.0.0.2")[0] == 200


def test_duplicate_certificate_header_is_400(certregd, db, pki):
    """Two copies of cert_header, from a trusted proxy, whatever their
    spelling and order, and also for the configured name: a 400, never a
    decision on either copy (issue 27)."""
    bind_ok(db, pki)
    d = certregd(db)
    api_port = int(d.config["server"]["listen_api"].rsplit(":", 1)[1])
    good, other = escaped(pki, "ec-ok").encode(), escaped(pki, "rsa-ok").encode()
    for first, second, name2 in [(good, good, b"X-SSL-Client-Cert"),
                                 (other, good, b"x-ssl-client-cert"),
                                 (good, b"", b"X-SSL-CLIENT-CERT")]:
        for path in [b"/v1/auth", b"/healthz"]:
            reply = raw_request(api_port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                b"X-SSL-Client-Cert: " + first + b"\r\n" + name2 + b": " +
                                second + b"\r\nConnection: close\r\n\r\n")
            assert status_of(reply) == 400, reply[:300]
            assert b"x-certreg-" not in reply.lower(), reply[:300]
    # One copy is decided as before.
    reply = raw_request(api_port, b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-SSL-Client-Cert: " +
                        good + b"\r\nConnection: close\r\n\r\n")
    assert status_of(reply) == 200 and b"X-Certreg-Outcome: OK" in reply, reply[:300]
    d2 = certregd(db, server={"cert_header": "X-Client-Cert"})
    port2 = int(d2.config["server"]["listen_api"].rsplit(":", 1)[1])
    reply = raw_request(port2, b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-Client-Cert: " + good +
                        b"\r\nX-Client-Cert: " + good + b"\r\nConnection: close\r\n\r\n")
    assert status_of(reply) == 400, reply[:300]


# --- a flood of the TLS listener (issue 27, finding 5) -------------------------

HALF_LOGIN = b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"


def tls_flood_client(port, ctx, kind):
    """One hostile TLS-listener client; returns a plain socket on its
    connection (for wait_closed) and the object keeping it open.
    kind: "raw" never starts the handshake; "idle" completes it and sends
    nothing; "half" completes it and sends half a request. (None, None)
    when the server refused the connection."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    if kind == "raw":
        raw.setblocking(False)
        return raw, raw
    try:
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, OSError):
        raw.close()
        return None, None
    if kind == "half":
        tls.sendall(HALF_LOGIN)
    plain = socket.socket(fileno=os.dup(tls.fileno()))
    plain.setblocking(False)
    return plain, tls


def api_answers_fast(d, pki, within=1.0):
    """/healthz and /v1/verify on the API listener answer, each within 1 s."""
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    t0 = time.monotonic()
    r = d.get("/healthz")
    t1 = time.monotonic()
    assert r.status == 200 and t1 - t0 < within, (r.status, t1 - t0)
    r = d.verify_bundle(chain)
    t2 = time.monotonic()
    assert r.status == 200 and r.json()["outcome"] == "OK", r.body
    assert t2 - t1 < within, f"/v1/verify took {t2 - t1:.2f} s"
    return max(t1 - t0, t2 - t1)


def test_tls_flood_does_not_lock_out_the_api_listener(certregd, db, pki):
    """The finding as reported: one worker, max_connections = 40 (the
    shared key), and 60 TLS clients that complete the handshake and send
    half a request. The API listener has a budget of its own, so /healthz
    and /v1/verify answer within 1 s all along; a good TLS client gets in
    too, by evicting the longest-idle flood connection."""
    bind_ok(db, pki)
    d = certregd(db, server={"workers": 1, "max_connections": 40, "request_timeout": 10})
    ctx = tls_context(pki)
    flood, keep = [], []
    try:
        for i in range(60):
            plain, obj = tls_flood_client(d.tls_port, ctx, "half")
            if plain is not None:
                flood.append(plain)
                keep.append(obj)
            if i % 20 == 19:
                api_answers_fast(d, pki)
        slowest = api_answers_fast(d, pki)
        status, body = login(d, pki)
        assert (status, body["outcome"]) == (200, "OK"), body
        api_answers_fast(d, pki)
        print(f"\nAPI under a 60-connection TLS flood: slowest answer {slowest * 1000:.0f} ms")
    finally:
        close_all(flood + keep)


def test_tls_flood_is_evicted_and_cut_at_its_deadlines(certregd, db, pki):
    """One worker, max_connections_tls = 30, handshake_timeout = header_timeout
    = 2 s (request_timeout 10 s). 60 hostile clients in rounds of three:
    one never handshakes, one goes idle after the handshake, one sends half
    a request. The API answers within 1 s throughout; the oldest 30 are
    evicted as the newer ones arrive; the rest are cut at their deadline,
    long before request_timeout. Each close is logged with its reason and
    counted per listener in /metrics; nothing happens to the API listener."""
    bind_ok(db, pki)
    d = certregd(db, server={"workers": 1, "max_connections_tls": 30,
                             "max_connections_api": 10, "handshake_timeout": 2,
                             "header_timeout": 2, "request_timeout": 10})
    ctx = tls_context(pki)
    flood, keep = [], []
    t0 = time.monotonic()
    try:
        for i in range(20):
            for kind in ("raw", "idle", "half"):
                plain, obj = tls_flood_client(d.tls_port, ctx, kind)
                assert plain is not None, "a new TLS client was refused, not given room"
                flood.append(plain)
                keep.append(obj)
            if i % 5 == 4:
                api_answers_fast(d, pki)
        print(f"\nflood of {len(flood)} sent in {time.monotonic() - t0:.2f} s")
        api_answers_fast(d, pki)
        # Each survivor's deadline (2 s) began before this wait did.
        closed = wait_closed(flood, time.monotonic() + 2 + SLACK + 2)
        assert len(closed) == len(flood), f"{len(flood) - len(closed)} flood connections still open"
        latest = max(closed.values())
        assert latest < 2 + SLACK, f"last flood connection cut after {latest:.1f} s"
        api_answers_fast(d, pki)
    finally:
        close_all(flood + keep)
    reasons = {}
    deadline = time.monotonic() + 5  # the 408s close after their linger
    while time.monotonic() < deadline:
        reasons = {}
        for m in re.finditer(r"event=conn_closed listener=(\w+) peer=\S+ reason=(\w+)", d.log()):
            reasons.setdefault((m[1], m[2]), 0)
            reasons[(m[1], m[2])] += 1
        if sum(n for (l, _), n in reasons.items() if l == "tls") >= len(flood):
            break
        time.sleep(0.2)
    print(f"\nclose reasons: {reasons}")
    assert sum(n for (l, _), n in reasons.items() if l == "tls") >= len(flood), reasons
    assert reasons.get(("tls", "evicted"), 0) >= 10, reasons
    assert reasons.get(("tls", "handshake_timeout"), 0) >= 5, reasons
    assert reasons.get(("tls", "header_timeout"), 0) >= 5, reasons
    assert not any(l == "api" and r in ("evicted", "refused") for l, r in reasons), reasons
    assert "reason=header_timeout detail=" in d.log()  # a half request: its 408, explained
    text = ""

    def count(listener, reason):
        m = re.search(r'certreg_listener_connections_dropped_total\{listener="%s",'
                      r'reason="%s"\} (\d+)' % (listener, reason), text)
        assert m, text
        return int(m[1])

    def published():
        # The worker publishes its counters once a second: polled.
        nonlocal text
        text = d.get("/metrics").body.decode()
        return (count("tls", "evicted") >= 10 and count("tls", "handshake_timeout") >= 5
                and count("tls", "header_timeout") >= 5)
    until(published, why=lambda: text)
    assert count("tls", "evicted") >= 10
    assert count("tls", "handshake_timeout") >= 5
    assert count("tls", "header_timeout") >= 5
    assert count("api", "evicted") == count("api", "refused") == 0


# --- policies in certificates nobody signed --------------------------------------

def policy_chain(tmp_path, name, policies, cas=1, maps=0):
    """A root, `cas` intermediates and a client leaf, each below the root
    carrying `policies` certificatePolicies and each intermediate `maps`
    policyMappings per policy; the chain (leaf first, root last) and the
    root, as PEM files."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    oids = [ObjectIdentifier(f"1.2.3.{n}") for n in range(policies)]
    mappings = x509.UnrecognizedExtension(  # id-ce-policyMappings, DER by hand
        ObjectIdentifier("2.5.29.33"), der_seq(b"".join(
            der_seq(der_oid(oids[i].dotted_string) + der_oid(oids[(i + j + 1) % policies]
                                                          .dotted_string))
            for i in range(policies) for j in range(maps))))
    n = cas + 2
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(n)]
    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {i}")])
             for i in range(n)]
    start = datetime.datetime(2026, 1, 1)
    pems = []
    for i in range(n):
        leaf = i == n - 1
        b = (x509.CertificateBuilder().subject_name(names[i])
             .issuer_name(names[max(i - 1, 0)]).public_key(keys[i].public_key())
             .serial_number(1000 + i).not_valid_before(start)
             .not_valid_after(start + datetime.timedelta(days=3650))
             .add_extension(x509.BasicConstraints(ca=not leaf, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(
                 digital_signature=leaf, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=not leaf,
                 crl_sign=not leaf, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(keys[i].public_key()),
                            critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 keys[max(i - 1, 0)].public_key()), critical=False))
        if leaf:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                critical=False)
        if i > 0 and policies:
            b = b.add_extension(x509.CertificatePolicies(
                [x509.PolicyInformation(o, None) for o in oids]), critical=False)
        if i > 0 and not leaf and maps:
            b = b.add_extension(mappings, critical=True)
        cert = b.sign(keys[max(i - 1, 0)], hashes.SHA256())
        pems.append(cert.public_bytes(serialization.Encoding.PEM))
    chain, root = tmp_path / f"{name}.pem", tmp_path / f"{name}-root.pem"
    chain.write_bytes(b"".join(reversed(pems)))
    root.write_bytes(pems[0])
    return chain, root


def der_len(n):
    return bytes([n]) if n < 128 else (
        bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big"))


def der_seq(body):
    return b"\x30" + der_len(len(body)) + body


def der_oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        enc = [a & 0x7F]
        a >>= 7
        while a:
            enc.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(enc))
    return b"\x06" + der_len(len(body)) + body


def cert_check(chain, ca, *wrapper):
    p = subprocess.run([*wrapper, str(BUILD / "certreg-admin"), "--json", "cert", "check",
                        "--cert", str(chain), "--ca", str(ca), "--at", "2026-06-01T00:00:00Z"],
                       capture_output=True, text=True, timeout=600)
    return json.loads(p.stdout), p.stderr


def check_instructions(chain, pki):
    """Instructions (callgrind) of `certreg-admin cert check` on chain, its
    root not trusted: a count, the same on every run, not a time."""
    out, err = cert_check(chain, pki.path("ca/trust.pem"), "valgrind", "--tool=callgrind",
                          "--callgrind-out-file=/dev/null")
    assert out["outcome"] == "CERT_UNTRUSTED", (out, err)
    return int(re.search(r"Collected : (\d+)", err)[1])


def asan_build():
    """Whether the programs under test are the sanitizer build, which
    valgrind cannot run (make check counts on the plain build)."""
    program = BUILD / "certreg-admin"
    return program.exists() and b"__asan_init" in program.read_bytes()


@pytest.mark.skipif(subprocess.run(["which", "valgrind"], capture_output=True).returncode,
                    reason="needs valgrind (callgrind)")
@pytest.mark.skipif(asan_build(), reason="valgrind and ASan do not mix")
def test_policies_of_a_chain_nobody_signed_cost_nothing(tmp_path, pki):
    """Second review (2026-12-06): with X509_V_FLAG_POLICY_CHECK, OpenSSL
    built the policy tree of whatever a client sent, verified or not (the
    engine's verify callback goes on past every error): 2,500 policies in
    each unsigned certificate cost 64 times a plain chain, a quarter of a
    second of a worker per handshake. Policies are now processed only on a
    path that verified. Counted in instructions, not timed."""
    plain = check_instructions(policy_chain(tmp_path, "plain", 0)[0], pki)
    laden = check_instructions(policy_chain(tmp_path, "laden", 2500)[0], pki)
    assert laden < 1.5 * plain, (laden, plain)


def test_a_policy_tree_openssl_gives_up_on_is_a_refusal(tmp_path):
    """A CA's own chain whose policy mappings grow past OpenSSL's node
    limit is refused (CERT_UNTRUSTED), not SERVICE_UNAVAILABLE: no one can
    evaluate it, so it is not trusted."""
    chain, root = policy_chain(tmp_path, "mapped", 40, cas=3, maps=5)
    out, err = cert_check(chain, root)
    assert out["outcome"] == "CERT_UNTRUSTED", (out, err)
    assert out["reason"] == "certificate policies could not be evaluated", out
