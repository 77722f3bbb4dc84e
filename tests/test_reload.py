"""Reloads and stops with connections open (contract section 7): "SIGHUP
reloads the config, trust anchors, CRLs and TLS certificate without
dropping connections", and "SIGTERM drains and exits 0".

A request in flight is held there deterministically: the registry's tables
are locked, so its decision waits on the lock (in pg_stat_activity) until
the test lets it go. On SIGHUP the old workers stop accepting, finish what
is in flight (Connection: close), and close idle keep-alive connections
cleanly, so that a client's next request goes to a new connection and is
decided with the reloaded trust.
"""
import hashlib
import shutil
import signal
import socket
import ssl
import time
from contextlib import contextmanager

import psycopg2

from fixtures.cli import admin
from fixtures.daemon import write_config
from test_http import read_response
from test_login import rsa_server_pair

REGNO = "110100778001"
# Long enough that a decision waiting on the lock never times out here.
HELD = {"timeout_ms": 20000}
NO_CACHE = {"size": 0, "verify_size": 0}


def bind(db, pki, leaf):
    admin(db.conninfo, "office", "add", "RL01", "--name", "重载管理部")
    admin(db.conninfo, "unit", "add", REGNO, "--name", "重载测试单位", "--office", "RL01")
    admin(db.conninfo, "key", "bind", "--cert", pki.leaf(leaf)["pem"], "--unit", REGNO,
          "--ticket", "T-RL")


def wait_for(predicate, what, d, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}\n{d.log()}"
        time.sleep(0.05)


@contextmanager
def registry_locked(db):
    """The tables a decision reads, locked; yields a function that waits
    until n decisions wait on the lock. The lock goes at the end."""
    locker = psycopg2.connect(db.conninfo)
    watch = psycopg2.connect(db.conninfo)
    watch.autocommit = True

    def waiting(d, n=1):
        def count():
            cur = watch.cursor()
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%certreg.decide%'")
            return cur.fetchone()[0]
        wait_for(lambda: count() >= n, f"no {n} decision(s) waiting on the lock", d)

    try:
        locker.cursor().execute("LOCK TABLE certreg.certificates, certreg.keys, certreg.units "
                                "IN ACCESS EXCLUSIVE MODE")
        yield waiting
    finally:
        locker.rollback()
        locker.close()
        watch.close()


def api_connect(d):
    host, port = d.api.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=20)


def verify_request(chain, close=False):
    body = chain.encode()
    return (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/pem-certificate-chain\r\n"
            + f"Content-Length: {len(body)}\r\n".encode()
            + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body)


def tls_context(pki, leaf):
    ctx = ssl.create_default_context(cafile=str(pki.dir / "ca/server-ca.pem"))
    ctx.load_cert_chain(pki.leaf(leaf)["chain"], pki.leaf(leaf)["key"])
    # A TLS stream must end with a close_notify: a bare TCP close (which
    # Debian's Python would take as an ordinary EOF) fails the read.
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def tls_connect(d, ctx):
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def login_request():
    return b"GET /v1/login HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"


def closed_cleanly(s):
    """The peer's end of s: an orderly close (TCP FIN; on TLS a
    close_notify first) with not one byte before it. A reset or a ragged
    TLS close raises."""
    data = s.recv(65536)
    assert data == b"", f"bytes before the close: {data!r}"
    return True


def reloaded(d, count):
    return d.log().count("event=reloaded ") >= count


def test_tls_certificate_changes_on_sighup_and_a_login_in_flight_is_answered(
        certregd, db, pki, tmp_path):
    """A new tls_cert and tls_key: after SIGHUP a new connection is served
    the new certificate, while a login in flight on a connection opened
    before gets its whole answer from the old worker, and then a
    close_notify."""
    bind(db, pki, "ec-ok")
    d = certregd(db, server={"workers": 1}, database=HELD, cache=NO_CACHE)
    ctx = tls_context(pki, "ec-ok")
    old = tls_connect(d, ctx)
    old_fp = fingerprint(old.getpeercert(binary_form=True))
    pem, key = rsa_server_pair(pki, tmp_path)
    new_fp = fingerprint(ssl.PEM_cert_to_DER_cert(pem.read_text()))
    assert old_fp != new_fp
    with registry_locked(db) as waiting:
        old.sendall(login_request())
        waiting(d)
        d.config["server"].update(tls_cert=pem, tls_key=key)
        write_config(d.conf_path, d.config)
        d.reload()
        wait_for(lambda: reloaded(d, 1) and "event=worker_draining slot=0 inflight=1"
                 in d.log(), "no reload, or the old worker had no request in flight", d)
        with tls_connect(d, ctx) as new:
            assert fingerprint(new.getpeercert(binary_form=True)) == new_fp
            new.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                        b"Connection: close\r\n\r\n")
            assert read_response(new)[0] == 200
            assert closed_cleanly(new)
    status, headers, body, rest = read_response(old)
    assert (status, headers.get("connection"), rest) == (200, "close", b""), (headers, body)
    assert b'"outcome":"OK"' in body and REGNO.encode() in body, body
    assert closed_cleanly(old)
    old.close()
    assert "event=reload_failed" not in d.log(), d.log()


@contextmanager
def verify_in_flight(certregd, db, pki):
    """certregd with one worker and a /v1/verify whose decision waits on a
    held lock; yields the daemon while it waits. Once the lock is let go the
    answer must come whole (200 OK, Connection: close), then a FIN."""
    bind(db, pki, "ec-ok")
    d = certregd(db, server={"workers": 1}, database=HELD, cache=NO_CACHE)
    chain = open(pki.leaf("ec-ok")["chain"]).read()
    s = api_connect(d)
    with registry_locked(db) as waiting:
        s.sendall(verify_request(chain))
        waiting(d)
        yield d
    status, headers, body, rest = read_response(s)
    assert (status, headers.get("connection"), rest) == (200, "close", b""), (headers, body)
    assert b'"outcome":"OK"' in body, body
    assert closed_cleanly(s)
    s.close()


def test_a_request_in_flight_on_the_api_listener_is_answered_across_a_sighup(
        certregd, db, pki):
    """A /v1/verify whose decision is in flight when SIGHUP comes is
    answered whole by the old worker (Connection: close), and the
    connection then closes with a FIN, not a reset."""
    with verify_in_flight(certregd, db, pki) as d:
        d.reload()
        wait_for(lambda: reloaded(d, 1) and "event=worker_draining slot=0 inflight=1"
                 in d.log(), "no reload, or the old worker had no request in flight", d)
        # The new worker serves meanwhile; the old one still owes its answer.
        assert d.get("/healthz").status == 200


def test_idle_keep_alive_connections_close_on_sighup_and_the_retry_sees_the_new_crl(
        certregd, db, pki):
    """Keep-alive connections idle at the reload, on both listeners, are
    closed by the old worker at once: a FIN (on TLS after a close_notify),
    never a reset or part of a response. The client's retry on a new
    connection is decided with the reloaded trust: the CRL installed before
    the SIGHUP revokes the certificate the old connection saw accepted."""
    d = certregd(db, server={"workers": 1}, trust={"revocation": "if-available"},
                 cache=NO_CACHE)
    crl = d.dir / "crl/int.crl.pem"
    chain = open(pki.leaf("revoked")["chain"]).read()

    def install(src):
        tmp = crl.with_name(".int.crl.pem.tmp")
        shutil.copyfile(pki.dir / src / "int.crl.pem", tmp)
        tmp.chmod(0o644)
        tmp.rename(crl)

    # The older CRL, which does not list `revoked`.
    install("crl-old")
    d.reload()
    # After the SIGHUP's reload nothing reloads until crl_dir changes again
    # (the watch's, if any, came first).
    wait_for(lambda: "event=reloaded trigger=sighup" in d.log(), "no reload", d)
    assert d.verify_bundle(chain).json()["outcome"] == "KEY_NOT_APPROVED"
    reloads = d.log().count("event=reloaded ")
    api = api_connect(d)
    api.sendall(verify_request(chain))
    status, headers, body, _ = read_response(api)
    assert (status, "connection" in headers) == (200, False), headers
    assert b'"outcome":"KEY_NOT_APPROVED"' in body, body
    tls = tls_connect(d, tls_context(pki, "revoked"))
    tls.sendall(login_request())
    status, headers, body, _ = read_response(tls)
    assert (status, "connection" in headers) == (403, False), headers
    assert b'"outcome":"KEY_NOT_APPROVED"' in body, body
    # Both idle now. The current CRL lands; SIGHUP (the watch of crl_dir
    # may reload first: either is a reload with it).
    install("crl-all")
    d.reload()
    for s in (api, tls):
        assert closed_cleanly(s)
        s.close()
    wait_for(lambda: reloaded(d, reloads + 1), "no reload", d)
    assert d.verify_bundle(chain).json()["outcome"] == "CERT_REVOKED"
    with tls_connect(d, tls_context(pki, "revoked")) as s:
        s.sendall(login_request())
        status, _, body, _ = read_response(s)
        assert (status, b'"outcome":"CERT_REVOKED"' in body) == (403, True), body
    assert "event=reload_failed" not in d.log(), d.log()


def test_sigterm_answers_the_request_in_flight_then_exits_0(certregd, db, pki):
    """SIGTERM with a decision in flight: the daemon stops accepting, waits
    for the decision, answers it whole, and only then exits 0."""
    with verify_in_flight(certregd, db, pki) as d:
        d.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "event=worker_draining slot=0 inflight=1" in d.log(),
                 "the worker did not drain with the request in flight", d)
        assert d.proc.poll() is None, d.log()
    assert d.proc.wait(timeout=20) == 0, d.log()
    assert "event=stopped" in d.log()
