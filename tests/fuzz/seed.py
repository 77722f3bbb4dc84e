#!/usr/bin/env python3
"""Seeds from the test PKI that `make fuzz` has just built.

The checked-in seeds (tests/fuzz/corpus/NAME/) carry certificates of some
earlier PKI, which the fresh one does not trust; these give each target a
few inputs that chain up to its trust store, in that target's input format.

    seed.py PKI_DIR OUT_DIR      writes OUT_DIR/corpus-{header,json,http}/pki-*
"""
import json
import pathlib
import sys
import urllib.parse

LEAVES = ("rsa-ok", "ec-ok", "sm2-ok", "bjca", "revoked", "expired", "enc-only")


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
        seeds = {
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
