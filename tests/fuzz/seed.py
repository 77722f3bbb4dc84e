#!/usr/bin/env python3
"""Seeds from the test PKI that `make fuzz` has just built.

The checked-in seeds (tests/fuzz/corpus/NAME/) carry certificates of some
earlier PKI, which the fresh one does not trust; these give each target a
few inputs that chain up to its trust store, in that target's input format.

    seed.py PKI_DIR OUT_DIR      writes OUT_DIR/corpus-{header,json,http,signed}/pki-*

fuzz_signed's seeds carry a challenge tagged under that target's fixed key
and valid at the PKI's T, signed with the leaf's key as a CA's client
software signs it, so that inputs reach the signature checks.
"""
import base64
import hashlib
import hmac
import json
import os
import pathlib
import struct
import subprocess
import sys
import urllib.parse

LEAVES = ("rsa-ok", "ec-ok", "sm2-ok", "bjca", "revoked", "expired", "enc-only")
# tests/fuzz/fuzz_signed.c's key (31 characters and the NUL) and FUZZ_NOW.
SIGNED_KEY = b"certreg fuzz_signed challenge k\0"
FUZZ_NOW = 1795435200


def signed_body(pki, name, leaf, rest):
    """A /v1/login/signed body: a challenge in common/challenge.h's format
    and its signature by the leaf's key (SM2 with SM3 and the default id,
    else SHA-256)."""
    body = bytes([1]) + struct.pack(">Q", FUZZ_NOW + 120) + os.urandom(32)
    tag = hmac.new(SIGNED_KEY, b"certreg challenge v1\0" + body, hashlib.sha256).digest()[:16]
    challenge = base64.urlsafe_b64encode(body + tag).decode()
    args = ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(pki / "leaf" / f"{name}.key")]
    args += (["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"] if name.startswith("sm2")
             else ["-digest", "sha256"])
    sig = subprocess.run(args, input=challenge.encode(), capture_output=True, check=True).stdout
    return json.dumps({"certificate": leaf, "chain": rest, "challenge": challenge,
                       "signature": base64.b64encode(sig).decode(), "nonce": "n-1"}).encode()


def split_pem(text):
    marker = "-----END CERTIFICATE-----"
    return [p.strip() + "\n" + marker + "\n" for p in text.split(marker) if p.strip()]


def main(pki, out):
    pki, out = pathlib.Path(pki), pathlib.Path(out)
    for name in LEAVES:
        path = pki / "leaf" / f"{name}.chain.pem"
        if not path.exists():
            continue
        chain = path.read_text()
        leaf, *rest = split_pem(chain)
        doc = json.dumps({"certificate": leaf, "chain": rest}).encode()
        header = urllib.parse.quote(leaf, safe="").encode()
        signed = signed_body(pki, name, leaf, rest)
        seeds = {
            "signed": {"login": signed},
            # fuzz_json: first byte 1 = application/json, 3 = PEM bundle
            "json": {"json": b"\x01" + doc, "pem": b"\x03" + chain.encode()},
            # fuzz_header: the header value as nginx escapes it
            "header": {"leaf": header},
            # fuzz_http: first byte 'A' = the API listener
            "http": {
                "verify": b"APOST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n" % len(doc) + doc,
                "auth": b"AGET /v1/auth HTTP/1.1\r\nHost: x\r\nX-SSL-Client-Cert: "
                        + header + b"\r\n\r\n",
                "challenge": b"APOST /v1/challenge HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 2\r\n\r\n{}",
                "signed": b"APOST /v1/login/signed HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n" % len(signed)
                          + signed,
            },
        }
        for target, files in seeds.items():
            d = out / f"corpus-{target}"
            d.mkdir(parents=True, exist_ok=True)
            for kind, data in files.items():
                (d / f"pki-{name}-{kind}").write_bytes(data)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
