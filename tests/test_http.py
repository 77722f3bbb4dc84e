"""The HTTP/1.1 layer (server/http.c) as clients see it: keep-alive,
pipelining, HTTP/1.0, chunked bodies, Expect: 100-continue, HEAD, request
smuggling refusals, the strict framing of issue 27 (chunk sizes, chunk
extensions and trailers, Host, control bytes in header values), and the
per-listener connection budget (max_connections_api) with its metrics."""
import fcntl
import json
import os
import re
import socket
import ssl
import subprocess
import termios
import threading
import time

from fixtures.cli import admin
from fixtures.daemon import until

REGNO = "110105000011"


def bind_ok(db, pki, leaf="ec-ok"):
    admin(db.conninfo, "office", "add", "HD01", "--name", "海淀管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "海淀测试单位", "--office", "HD01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", REGNO,
          "--ticket", "T-HTTP")


def api_port(d):
    return int(d.config["server"]["listen_api"].rsplit(":", 1)[1])


def read_response(s, buf=b""):
    """Reads one response from s; returns (status, headers dict, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed mid-response: {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def is_closed(s, timeout=3.0):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def verify_request(pem, extra=b"", version=b"1.1"):
    body = json.dumps({"certificate": pem}).encode()
    return (b"POST /v1/verify HTTP/" + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)


def test_keep_alive_and_pipelining(certregd, db, pki):
    """Ten requests on one HTTP/1.1 connection, then three pipelined in one
    write: each answered, in order, on the same connection."""
    bind_ok(db, pki)
    d = certregd(db)
    pem = open(pki.leaf("ec-ok")["pem"]).read()
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        rest = b""
        for _ in range(10):
            s.sendall(verify_request(pem))
            status, headers, body, rest = read_response(s, rest)
            assert status == 200 and json.loads(body)["outcome"] == "OK"
            assert headers.get("connection") != "close"
            assert re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["date"])
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + verify_request(pem) +
                  b"GET /nosuch HTTP/1.1\r\nHost: x\r\n\r\n")
        got = []
        for _ in range(3):
            status, headers, body, rest = read_response(s, rest)
            got.append(status)
        assert got == [200, 200, 404]
        assert json.loads(body)["error"] == "not_found"


def test_http_1_0(certregd, db, pki):
    """HTTP/1.0 closes after the reply unless it asks for keep-alive."""
    bind_ok(db, pki)
    d = certregd(db)
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        status, headers, _, _ = read_response(s)
        assert status == 200 and headers["connection"] == "close"
        assert is_closed(s)
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _, _ = read_response(s)
            assert status == 200 and headers["connection"] == "keep-alive"


def test_chunked_body_and_100_continue(certregd, db, pki):
    bind_ok(db, pki)
    d = certregd(db)
    body = json.dumps({"certificate": open(pki.leaf("ec-ok")["pem"]).read()}).encode()
    # Upper and lower case hex digits and leading zeros are all chunk-size.
    sizes = [b"%x", b"%X", b"%04x"]
    chunked = b"".join((sizes[n % 3] % len(body[i:i + 100])) + b"\r\n" + body[i:i + 100] +
                       b"\r\n" for n, i in enumerate(range(0, len(body), 100))) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        status, _, reply, _ = read_response(s)
        assert status == 200 and json.loads(reply)["outcome"] == "OK", reply
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        status, _, _, rest = read_response(s)
        assert status == 100
        s.sendall(body)
        status, _, reply, _ = read_response(s, rest)
        assert status == 200 and json.loads(reply)["outcome"] == "OK"
    # Over max_body: 413 before any of the body is sent, no 100 Continue.
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 70000\r\n\r\n")
        status, headers, _, _ = read_response(s)
        assert status == 413 and headers["connection"] == "close"


def send_max():
    """The most a socket's send buffer grows to (tcp_wmem's maximum)."""
    try:
        return int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 << 20


def slow_reader(s, requests, threaded=False, wait=1.0):
    """Sends pipelined requests to a socket that reads nothing for a while,
    so that the replies fill it and the server's writes block; then reads
    them all. Returns the replies' (status, body)."""
    sender = threading.Thread(target=s.sendall, args=(b"".join(requests),))
    if threaded:  # more than the server reads ahead: sent while reading
        sender.start()
    else:
        sender.run()
    time.sleep(wait)
    got, rest = [], b""
    for _ in requests:
        status, _, body, rest = read_response(s, rest)
        got.append((status, body))
    if threaded:
        sender.join()
    return got


def small_socket(port):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", port))
    return raw


def test_replies_to_a_client_that_does_not_read(certregd, db, pki):
    """Replies go straight to the socket while it takes them and through
    the connection's buffer when it does not: pipelined replies worth more
    than the kernel buffers, to a client that reads nothing for a second,
    arrive whole and in order on the API listener and over TLS. Over TLS
    the requests also overflow the read limit (32 KiB), so the rest of a
    record of requests waits in OpenSSL, not in the socket."""
    bind_ok(db, pki)
    d = certregd(db)
    replies = send_max() * 3 // 2
    pem = open(pki.leaf("ec-ok")["pem"]).read()
    with small_socket(api_port(d)) as s:
        n = replies // 350  # a 700-byte decision, a 404
        got = slow_reader(s, [verify_request(pem), b"GET /nosuch HTTP/1.1\r\nHost: x\r\n\r\n"]
                          * (n // 2), threaded=True)
        assert [st for st, _ in got] == [200, 404] * (n // 2)
        assert all(json.loads(b)["outcome"] == "OK" for _, b in got[::2])
        assert sum(len(b) for _, b in got) > send_max()
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    ctx.load_cert_chain(pki.leaf("ec-ok")["chain"], pki.leaf("ec-ok")["key"])
    with ctx.wrap_socket(small_socket(d.tls_port), server_hostname="localhost") as s:
        req = b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"
        n = replies // 700
        got = slow_reader(s, [req] * n)
        docs = [json.loads(b) for st, b in got if st == 200]
        assert len(docs) == n and all(doc["outcome"] == "OK" for doc in docs)
        assert sum(len(b) for _, b in got) > send_max()


def test_head_has_no_body(certregd, db, pki):
    d = certregd(db)
    with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"}\n"):
            data += s.recv(65536)
        first, _, second = data.partition(b"\r\n\r\n")
        assert b"Content-Length: 16" in first  # {"status":"ok"}\n
        assert second.startswith(b"HTTP/1.1 200"), data  # no body in between


def test_smuggling_shapes_are_refused(certregd, db, pki):
    """Both framings, two lengths, a folded header, a bare LF, a control
    character in the path: 400 (or 501 for an unknown coding), then close."""
    d = certregd(db)
    h = b"Host: x\r\n"  # so that each is refused for what it shows, not for a missing Host
    cases = [
        b"POST /v1/verify HTTP/1.1\r\n" + h +
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /v1/verify HTTP/1.1\r\n" + h + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\n",
        b"POST /v1/verify HTTP/1.1\r\n" + h + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"X-A: 1\r\n folded\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"X-A: 1\nX-B: 2\r\n\r\n",
        b"GET /heal\x01thz HTTP/1.1\r\n" + h + b"\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"Bad Name: 1\r\n\r\n",
    ]
    for req in cases:
        with socket.create_connection(("127.0.0.1", api_port(d)), timeout=5) as s:
            s.sendall(req)
            status, headers, body, _ = read_response(s)
            assert status in (400, 501), (req, status, body)
            assert headers["connection"] == "close"
            assert is_closed(s)


def metric(d, name):
    text = d.get("/metrics").body.decode()
    total = 0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_connection_cap(certregd, db, pki):
    """max_connections_api = 20, one worker. Idle connections beyond the
    listener's budget make room for new ones, longest idle first: silent
    ones, and ones that sent half a header block (issue 27: those could hold
    the budget). When every connection has a request whose header block is
    complete (here: its body is awaited), a new one is refused at once.
    Each close is logged with its reason, and /metrics counts them per
    listener."""
    bind_ok(db, pki)
    d = certregd(db, server={"workers": 1, "max_connections_api": 20, "request_timeout": 30})
    port = api_port(d)
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    time.sleep(0.3)  # all accepted
    # A good client still gets in: the oldest silent connection makes room.
    r = d.verify_bundle(chain)
    assert r.status == 200 and r.json()["outcome"] == "OK"
    assert is_closed(silent[0], timeout=2), "the oldest idle connection was not closed"
    assert not is_closed(silent[-1], timeout=0.2)
    for s in silent:
        s.close()
    time.sleep(0.3)
    # Half a header block does not make a connection busy: evictable too.
    half = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        half.append(s)
        time.sleep(0.01)  # accepted in this order
    time.sleep(0.3)
    r = d.verify_bundle(chain)
    assert r.status == 200 and r.json()["outcome"] == "OK"
    assert is_closed(half[0], timeout=2), "the oldest half-sent request was not evicted"
    assert not is_closed(half[-1], timeout=0.2)
    half[-1].sendall(b"\r\n")
    assert read_response(half[-1])[0] == 200
    for s in half:
        s.close()
    time.sleep(0.3)
    # A complete header block makes a connection busy: never evicted.
    body = chain.encode()
    busy = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/pem-certificate-chain\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        busy.append(s)
    # Each header block read by the worker (nothing left at the daemon's
    # end of the socket), so that each connection is busy: after a fixed
    # 0.3 s a stalled worker could accept the extra one while some were
    # still unread, so idle, and evict the oldest instead of refusing.
    until(lambda: all(server_rx_queue(port, s.getsockname()[1]) == 0 for s in busy),
          why=lambda: "header blocks not read by the worker")
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert is_closed(extra, timeout=2), "a connection over the budget was not refused"
    extra.close()
    for s in busy:
        assert not is_closed(s, timeout=0.05)
        s.sendall(body)
        status, _, reply, _ = read_response(s)
        assert status == 200 and json.loads(reply)["outcome"] == "OK"
    for s in busy[1:]:
        s.close()
    # The worker publishes its counters once a second: polled.
    until(lambda: metric(d, "certreg_connections_dropped_total{reason=\"cap\"}") >= 3
          and metric(d, "certreg_listener_connections_dropped_total"
                        "{listener=\"api\",reason=\"evicted\"}") >= 2
          and metric(d, "certreg_listener_connections_dropped_total"
                        "{listener=\"api\",reason=\"refused\"}") >= 1
          and metric(d, "certreg_connections_accepted_total") >= 60,
          why=lambda: d.get("/metrics").body.decode())
    assert metric(d, "certreg_connections_dropped_total{reason=\"cap\"}") >= 3
    assert metric(d, "certreg_listener_connections_dropped_total"
                     "{listener=\"api\",reason=\"evicted\"}") >= 2
    assert metric(d, "certreg_listener_connections_dropped_total"
                     "{listener=\"api\",reason=\"refused\"}") >= 1
    assert metric(d, "certreg_listener_connections_dropped_total"
                     "{listener=\"tls\",reason=\"evicted\"}") == 0
    assert metric(d, "certreg_connections_accepted_total") >= 60
    assert metric(d, "certreg_connections") >= 1  # busy[0], kept open
    assert metric(d, "certreg_listener_connections{listener=\"api\"}") >= 1
    busy[0].close()
    log = d.log()
    assert re.search(r"event=conn_closed listener=api peer=127\.0\.0\.1 reason=evicted", log)
    assert re.search(r"event=conn_closed listener=api peer=127\.0\.0\.1 reason=refused", log)


def test_out_of_descriptors_pauses_accepting(certregd, db):
    """With the worker out of file descriptors, pending connections cannot
    be accepted: the worker says so, does not spin on the listening socket
    (level-triggered) and accepts again once descriptors are free."""
    d = certregd(db, server={"workers": 1, "max_connections": 1000}, nofile=48)
    port = api_port(d)
    worker = int(open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read().split()[0])
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(60)]
    deadline = time.monotonic() + 5
    while "event=accept_failed" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "event=accept_failed" in d.log()
    assert "Too many open files" in d.log()

    def cpu_seconds():
        fields = open(f"/proc/{worker}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    time.sleep(1)
    assert cpu_seconds() - before < 0.3, "the worker spins while out of descriptors"
    for s in held:
        s.close()
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        try:
            status = d.get("/healthz").status
            break
        except OSError:
            time.sleep(0.2)
    assert status == 200


def test_request_timeout_is_a_deadline_with_408(certregd, db, pki):
    """A request that started arriving but did not finish in request_timeout
    gets a 408 and the connection closes; a silent one is just closed."""
    d = certregd(db, server={"request_timeout": 2})
    port = api_port(d)
    partial = socket.create_connection(("127.0.0.1", port), timeout=5)
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):  # keeps sending, more often than the timeout
        time.sleep(0.5)
        partial.sendall(b"X-Pad: a\r\n")
    status, headers, body, _ = read_response(partial)
    elapsed = time.monotonic() - t0
    assert status == 408 and json.loads(body)["error"] == "request_timeout"
    assert 1.5 < elapsed < 4.5, elapsed
    assert is_closed(silent, timeout=4)
    partial.close()
    silent.close()


# --- strict framing (issue 27, finding 7) ---------------------------------------

def refused_with_400(port, req, timeout=5):
    """Sends req on a new connection: the reply is a 400 and the connection
    closes after it, whatever else was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        status, headers, body, _ = read_response(s)
        assert status == 400, (req, status, body)
        assert headers["connection"] == "close", (req, headers)
        assert is_closed(s), req
        return json.loads(body)["detail"]


CHUNKED_HEAD = (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def test_chunked_framing_is_strict(certregd, db, pki):
    """Anything in the chunked framing that RFC 9112 does not allow is a 400:
    a chunk size with a character that is not a hex digit (sign, 0x,
    whitespace, garbage before or after), one that cannot be held (17 hex
    digits and more), a missing CRLF after the chunk data, a bare LF
    anywhere. Chunk extensions and trailer fields, which the grammar allows,
    are refused too (docs/SECURITY.md says why). The same body framed
    plainly is served, so the refusals are for the framing."""
    bind_ok(db, pki)
    d = certregd(db)
    port = api_port(d)
    body = json.dumps({"certificate": open(pki.leaf("ec-ok")["pem"]).read()}).encode()
    chunk = b"%x\r\n" % len(body) + body + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(CHUNKED_HEAD + chunk + b"0\r\n\r\n")
        status, _, reply, _ = read_response(s)
        assert status == 200 and json.loads(reply)["outcome"] == "OK", reply
    n = b"%x" % len(body)
    cases = {
        "sign": b"+" + n + b"\r\n" + body + b"\r\n0\r\n\r\n",
        "0x": b"0x" + n + b"\r\n" + body + b"\r\n0\r\n\r\n",
        "leading space": b" " + n + b"\r\n" + body + b"\r\n0\r\n\r\n",
        "trailing space": n + b" \r\n" + body + b"\r\n0\r\n\r\n",
        "trailing tab": n + b"\t\r\n" + body + b"\r\n0\r\n\r\n",
        "garbage after": n + b"g\r\n" + body + b"\r\n0\r\n\r\n",
        "not hex": b"zz\r\n{}\r\n0\r\n\r\n",
        "empty size": b"\r\n{}\r\n0\r\n\r\n",
        "17 digits": b"0" * 16 + b"2\r\n{}\r\n0\r\n\r\n",
        "overflow": b"1" + b"0" * 16 + b"\r\n{}\r\n0\r\n\r\n",
        "huge": b"f" * 40 + b"\r\n{}\r\n0\r\n\r\n",
        "extension": n + b";ext=1\r\n" + body + b"\r\n0\r\n\r\n",
        "extension on the last chunk": chunk + b"0;ext\r\n\r\n",
        "extension with space": n + b" ;ext\r\n" + body + b"\r\n0\r\n\r\n",
        "trailer": chunk + b"0\r\nX-Trailer: y\r\n\r\n",
        "trailer smuggling a header": chunk + b"0\r\nX-SSL-Client-Cert: x\r\n\r\n",
        "no CRLF after data": n + b"\r\n" + body + b"XX0\r\n\r\n",
        "bare LF after size": n + b"\n" + body + b"\r\n0\r\n\r\n",
        "bare LF after data": n + b"\r\n" + body + b"\n0\r\n\r\n",
        "bare LF after last chunk": chunk + b"0\n\r\n",
        "bare LF at the end": chunk + b"0\r\n\n",
        "CR in size": b"2\r2\r\n{}\r\n0\r\n\r\n",
    }
    for name, framed in cases.items():
        detail = refused_with_400(port, CHUNKED_HEAD + framed)
        print(f"{name}: {detail}")
    assert d.verify_bundle(open(pki.leaf("ec-ok")["chain"]).read()).status == 200


def test_host_header_is_required_once(certregd, db):
    """RFC 9112 3.2: an HTTP/1.1 request without Host, and any request with
    two, or with a Host that is not a host, is a 400. HTTP/1.0 needs none;
    an empty Host is allowed."""
    d = certregd(db)
    port = api_port(d)
    for req in [
        b"GET /healthz HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nX-Host: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: user@a\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\"b\r\n\r\n",
    ]:
        refused_with_400(port, req)
    for req in [
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nhost: certreg.example.gov.cn\r\nConnection: close\r\n\r\n",
    ]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(req)
            assert read_response(s)[0] == 200, req


def test_control_bytes_in_header_values_are_400(certregd, db):
    """A header value may hold visible characters, obs-text, SP and HTAB
    only (RFC 9110 5.5): any other control byte is a 400, a tab is not."""
    d = certregd(db)
    port = api_port(d)
    for ch in [0x01, 0x08, 0x0b, 0x0c, 0x0d, 0x1b, 0x1f, 0x7f]:
        detail = refused_with_400(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a" + bytes([ch]) + b"b\r\n\r\n")
        assert "control character" in detail or "bare CR" in detail, (ch, detail)
    refused_with_400(port, b"GET /healthz HTTP/1.1\r\nHost: x\x01\r\n\r\n")
    # Long values are checked sixteen bytes at a time: a control byte at
    # every offset of the first three blocks and of the tail after them,
    # after a tab in the same block or earlier, next to obs-text, is found
    # as in a short one.
    for ch in [0x01, 0x1f, 0x7f]:
        for pos in range(0, 52):
            for lead in [b"", b"\t", b"\xff" * 9]:
                value = lead + b"A" * pos + bytes([ch]) + b"\x80" * (51 - pos)
                detail = refused_with_400(
                    port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + value + b"\r\n\r\n")
                assert "control character" in detail, (ch, pos, lead, detail)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"\t\x7e\x80\xff ~" * 40 +
                  b"\r\nConnection: close\r\n\r\n")
        assert read_response(s)[0] == 200
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\tb\xe4\xb8\xad\r\n"
                  b"Connection: close\r\n\r\n")
        assert read_response(s)[0] == 200


def server_rx_queue(port, peer_port):
    """Bytes the kernel holds for the daemon's end of the loopback
    connection port <- peer_port that the daemon has not read."""
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if (int(f[1].split(":")[1], 16) == port and
                int(f[2].split(":")[1], 16) == peer_port):
            return int(f[4].split(":")[1], 16)
    raise AssertionError(f"no socket {port} <- {peer_port} in /proc/net/tcp")


def test_plain_listener_buffers_no_more_than_its_input_limit(certregd, db, pki):
    """While a request waits for the registry, a client that pipelines
    without end gets no more of its bytes buffered by the daemon than the
    input limit, 2 * (16 KiB + max_body): the rest stays in the kernel.
    (The plain listener's own readv once read into all the free space
    libevent handed out, which can be more than it asked for.)"""
    max_body = 1024
    limit = 2 * (16384 + max_body)
    d = certregd(db, server={"max_body": max_body, "workers": 1},
                 database={"timeout_ms": 20000})
    port = api_port(d)
    pem = open(pki.leaf("ec-ok")["pem"]).read()
    first = verify_request(pem)
    # The registry's tables locked: the decision waits, the connection
    # stays in its handling state, and reading goes on into the input.
    lock = subprocess.Popen(
        [str(db.cluster.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-d", db.conninfo], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        lock.stdin.write("BEGIN; LOCK TABLE certreg.certificates, certreg.keys, certreg.units "
                         "IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
        lock.stdin.flush()
        assert lock.stdout.readline().strip() == "locked"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(first)
            s.setblocking(False)
            sent, junk = 0, b"X" * 65536
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until the kernel takes no more
                try:
                    sent += s.send(junk)
                except BlockingIOError:
                    time.sleep(0.2)
                    try:
                        sent += s.send(junk)
                    except BlockingIOError:
                        break
            taken, same = None, 0
            for _ in range(100):  # until the daemon has stopped reading (0.5 s)
                outq = fcntl.ioctl(s, termios.TIOCOUTQ, b"\0\0\0\0")
                now = (len(first) + sent - int.from_bytes(outq, "little") -
                       server_rx_queue(port, s.getsockname()[1]))
                same = same + 1 if now == taken else 0
                if same == 5:
                    break
                taken = now
                time.sleep(0.1)
            assert sent > 4 * limit, sent
            # The first request itself left the input when it was parsed.
            assert taken <= len(first) + limit, (taken - len(first), limit)
            assert taken >= limit // 2, (taken, limit)
    finally:
        lock.stdin.write("ROLLBACK;\n")
        lock.stdin.close()
        lock.wait(timeout=30)


def test_tls_requests_read_ahead_with_the_handshake_and_a_clean_close(certregd, db, pki):
    """The client's last handshake flight and two requests, each its own
    TLS record, arrive in one segment: OpenSSL reads them all at once
    (read_ahead) while it finishes the handshake, and no socket event will
    announce the requests; both are answered. The second says Connection:
    close, and the TLS stream then ends with a close_notify, not a bare TCP
    close (a ragged EOF is an error here)."""
    bind_ok(db, pki)
    d = certregd(db)
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    ctx.load_cert_chain(pki.leaf("ec-ok")["chain"], pki.leaf("ec-ok")["key"])
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Debian's Python sets it
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=5) as raw:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(out.read())
                chunk = raw.recv(65536)
                assert chunk, "closed during the handshake"
                inc.write(chunk)
        req = b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
        tls.write(req + b"\r\n")
        tls.write(req + b"Connection: close\r\n\r\n")
        raw.sendall(out.read())  # Finished and both records, one send
        data = b""
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                more = raw.recv(65536)
                if more:
                    inc.write(more)
                else:
                    inc.write_eof()
                continue
            if not chunk:
                break
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2, data
    assert data.count(b'"outcome":"OK"') == 2, data
