#!/usr/bin/python3
"""Build the certreg test PKI into a directory.

This script owns every certificate, key and CRL the tests and the demo use:
trusted RSA/ECDSA and SM2/SM3 hierarchies, an untrusted look-alike hierarchy,
one client leaf per certificate-side outcome of CONTRACT.md section 4, CRL sets
(current, stale, superseded, forged), the TLS server certificate, and
manifest.json describing each leaf and the outcome the engine must give.
It does not start anything and does not touch the database.

Callers: tests/fixtures/pki.py (pytest), `make run`, and people by hand:

    tests/pki/mkpki.py OUTDIR [--now EPOCH]     build (T = now, or EPOCH)
    tests/pki/mkpki.py --selftest OUTDIR        check the build with openssl

Every validity period and CRL time is relative to the reference time T, so a
test either uses the real clock (T is about now) or passes a fixed now = T.
Only python3 stdlib and the openssl CLI (OpenSSL 3.0) are used.
"""

import argparse
import base64
import calendar
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

OPENSSL = os.environ.get("OPENSSL", "openssl")

DAY = 86400

# GM/T 0009-2012 default SM2 distinguishing identifier. Every SM2 signature in
# this PKI (certificates, CSRs and CRLs) is made over it.
SM2_ID = "1234567812345678"
SM2_SIGOPT = "distid:" + SM2_ID

# Private holder-id extensions (see CONTRACT.md section 3).
OID_BJCA_HOLDER = "1.2.156.112562.2.1.1.1"
OID_BJCA_CREDIT = "1.2.156.112562.2.1.1.17"
OID_BJCA_UID = "2.16.840.1.113732.2"

PKI_O = "certreg test PKI"
ROOT_DN = "/C=CN/O=%s/CN=certreg Test Root CA" % PKI_O
INT_DN = "/C=CN/O=%s/CN=certreg Test Issuing CA" % PKI_O

# Name, subject, parent (None: self-signed), key type, extension section,
# notBefore and notAfter offsets from T in seconds.
CAS = [
    ("root", ROOT_DN, None, "rsa", "v3_root", -365 * DAY, 3650 * DAY),
    ("int", INT_DN, "root", "ec", "v3_int", -365 * DAY, 3650 * DAY),
    ("int-expired", "/C=CN/O=%s/CN=certreg Test Expired Issuing CA" % PKI_O,
     "root", "ec", "v3_int", -730 * DAY, -1 * DAY),
    ("int-revoked", "/C=CN/O=%s/CN=certreg Test Revoked Issuing CA" % PKI_O,
     "root", "ec", "v3_int", -365 * DAY, 3650 * DAY),
    ("root-ec", "/C=CN/O=%s/CN=certreg Test EC Root CA" % PKI_O,
     None, "ec", "v3_root", -365 * DAY, 3650 * DAY),
    # Untrusted look-alikes: same subject DNs as root and int, other keys.
    ("other-root", ROOT_DN, None, "rsa", "v3_root", -365 * DAY, 3650 * DAY),
    ("other-int", INT_DN, "other-root", "ec", "v3_int",
     -365 * DAY, 3650 * DAY),
    ("sm2-root", "/C=CN/O=%s/CN=certreg Test SM2 Root CA" % PKI_O,
     None, "sm2", "v3_root", -365 * DAY, 3650 * DAY),
    ("sm2-int", "/C=CN/O=%s/CN=certreg Test SM2 Issuing CA" % PKI_O,
     "sm2-root", "sm2", "v3_int", -365 * DAY, 3650 * DAY),
]

CA_PARENT = {c[0]: c[2] for c in CAS}

# The trust the manifest's expected outcomes assume.
TRUST = ["root", "sm2-root", "root-ec"]
INTERMEDIATES = ["int", "sm2-int"]
# CAs whose CRLs make up the complete set crl/ (= crl-all/).
CRL_ISSUERS = ["root", "int", "int-expired", "int-revoked", "root-ec",
               "sm2-root", "sm2-int"]


def leaf_table(codes):
    """The client leaves: name -> dict(issuer, key, ext, nb, na, expected).

    `key` is a key type, or "same:NAME" to reuse NAME's key pair.
    `expected` is the certificate-side outcome at T with ca/trust.pem as
    ca_file, revocation=require, crl-all/ loaded and clock_skew=300.
    """
    ok = (-30 * DAY, 365 * DAY)
    t = {}

    def add(name, issuer, key, ext, span, expected, **kw):
        t[name] = dict(issuer=issuer, key=key, ext=ext, nb=span[0],
                       na=span[1], expected=expected, **kw)

    add("rsa-ok", "int", "rsa", "v3_client", ok, "OK")
    add("ec-ok", "int", "ec", "v3_client", ok, "OK")
    add("expired", "int", "ec", "v3_client", (-400 * DAY, -1 * DAY),
        "CERT_EXPIRED")
    add("notyet", "int", "ec", "v3_client", (1 * DAY, 365 * DAY),
        "CERT_NOT_YET_VALID")
    # notBefore T+120s: inside the default 300 s skew, so OK for the engine
    # but "not yet valid" for a verifier without skew (openssl verify).
    add("notyet-skew", "int", "ec", "v3_client", (120, 365 * DAY), "OK",
        expected_skew0="CERT_NOT_YET_VALID")
    add("revoked", "int", "ec", "v3_client", ok, "CERT_REVOKED")
    add("enc-only", "int", "ec", "v3_enc", ok, "CERT_WRONG_USAGE")
    add("server-eku", "int", "ec", "v3_server_eku", ok, "CERT_WRONG_USAGE")
    add("no-eku", "int", "ec", "v3_no_eku", ok, "OK")
    add("untrusted", "other-int", "ec", "v3_client", ok, "CERT_UNTRUSTED")
    add("badsig", "int", "ec", "v3_client", ok, "CERT_UNTRUSTED",
        corrupt=True)
    add("expired-int", "int-expired", "ec", "v3_client",
        (-30 * DAY, 365 * DAY), "CERT_EXPIRED")
    add("revoked-int", "int-revoked", "ec", "v3_client", ok, "CERT_REVOKED")
    add("renew-old", "int", "ec", "v3_client", (-400 * DAY, -5 * DAY),
        "CERT_EXPIRED")
    add("renew-new", "int", "same:renew-old", "v3_client",
        (-5 * DAY, 360 * DAY), "OK")
    add("bjca", "int", "ec", "v3_bjca", (-200 * DAY, 165 * DAY), "OK",
        holder_id="JJ" + codes["org_a"], credit_code=codes["uscc_a"],
        org="北京测试科技有限公司")
    add("bjca-renewed", "int", "ec", "v3_bjca", (-10 * DAY, 355 * DAY), "OK",
        holder_id="JJ" + codes["org_a"], credit_code=codes["uscc_a"],
        org="北京测试科技有限公司")
    add("bjca-other", "int", "ec", "v3_bjca_other", ok, "OK",
        holder_id="JJ" + codes["org_b"], credit_code=codes["uscc_b"],
        org="北京另一测试有限公司")
    add("bjca-uid", "int", "ec", "v3_bjca_uid", ok, "OK",
        holder_id="JJ" + codes["org_d"], credit_code=None)
    add("orgid", "int", "ec", "v3_client", ok, "OK",
        holder_id="NTRCN-" + codes["uscc_c"], credit_code=codes["uscc_c"],
        orgid="NTRCN-" + codes["uscc_c"])
    add("ecroot-ok", "root-ec", "ec", "v3_client", ok, "OK")
    add("sm2-ok", "sm2-int", "sm2", "v3_client", ok, "OK")
    add("sm2-revoked", "sm2-int", "sm2", "v3_client", ok, "CERT_REVOKED")
    add("sm2-expired", "sm2-int", "sm2", "v3_client",
        (-400 * DAY, -1 * DAY), "CERT_EXPIRED")
    return t


# Which certificates are revoked, when (offset from T) and why.
REVOCATIONS = {
    "root": [("ca", "int-revoked", -3 * DAY, "keyCompromise")],
    "int": [("leaf", "revoked", -2 * DAY, "keyCompromise")],
    "sm2-int": [("leaf", "sm2-revoked", -2 * DAY, "keyCompromise")],
}

CRL_NUMBER = 0x10        # crl/*.crl.pem
CRL_NUMBER_OLD = 0x05    # crl-old/int.crl.pem
CRL_NUMBER_STALE = 0x0f  # crl-stale/int.crl.pem


# ---------------------------------------------------------------------------
# Unified Social Credit Code (GB 32100-2015) and organisation code (GB 11714)

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def org_code_check(body8):
    """GB 11714-1997 check character of an 8-character organisation code."""
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    total = 0
    for ch, w in zip(body8, weights):
        v = int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10
        total += v * w
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def uscc_check(first17):
    """GB 32100-2015 check character over the first 17 characters."""
    total = sum(USCC_CHARS.index(ch) * pow(3, i, 31)
                for i, ch in enumerate(first17))
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc_valid(code):
    return (len(code) == 18 and all(c in USCC_CHARS for c in code)
            and uscc_check(code[:17]) == code[17]
            and org_code_check(code[8:16]) == code[16])


def make_uscc(prefix8, org_body8):
    """Registration authority + type + division code, then org code body."""
    org = org_body8 + org_code_check(org_body8)
    first17 = prefix8 + org
    return first17 + uscc_check(first17), org


def make_codes():
    # 9 = market regulator, 1 = enterprise, 110108 = Beijing Haidian.
    uscc_a, org_a = make_uscc("91110108", "MA01CR7A")
    uscc_b, org_b = make_uscc("91110105", "MA02BT3K")
    uscc_c, org_c = make_uscc("12110000", "40000061")
    _, org_d = make_uscc("91110101", "10221340")
    # Same shape as uscc_a, wrong check character.
    bad_check = USCC_CHARS[(USCC_CHARS.index(uscc_a[17]) + 1) % 31]
    invalid = uscc_a[:17] + bad_check
    for c in (uscc_a, uscc_b, uscc_c):
        assert uscc_valid(c), c
    assert not uscc_valid(invalid)
    return dict(uscc_a=uscc_a, org_a=org_a, uscc_b=uscc_b, org_b=org_b,
                uscc_c=uscc_c, org_c=org_c, org_d=org_d,
                uscc_invalid=invalid)


# ---------------------------------------------------------------------------
# Small DER reader: enough to find tbs, SPKI, validity and the signature.

def der_tlv(b, i):
    """Return (tag, start of value, end of value) of the TLV at offset i."""
    tag = b[i]
    n = b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[j:j + k], "big")
        j += k
    return tag, j, j + n


def der_children(b, start, end):
    out = []
    i = start
    while i < end:
        tag, vs, ve = der_tlv(b, i)
        out.append((tag, i, vs, ve))
        i = ve
    return out


def der_time(b, tag, vs, ve):
    s = b[vs:ve].decode()
    if tag == 0x17:  # UTCTime, RFC 5280 4.1.2.5.1 century rule
        yy = int(s[:2])
        s = ("19" if yy >= 50 else "20") + s
    return calendar.timegm(time.strptime(s, "%Y%m%d%H%M%SZ"))


def cert_fields(der):
    """SPKI DER, notBefore, notAfter of a DER certificate."""
    _, cs, ce = der_tlv(der, 0)
    tbs = der_children(der, cs, ce)[0]
    kids = der_children(der, tbs[2], tbs[3])
    if kids[0][0] == 0xA0:  # explicit version
        kids = kids[1:]
    validity, spki = kids[3], kids[5]
    nb, na = der_children(der, validity[2], validity[3])
    return (der[spki[1]:spki[3]], der_time(der, nb[0], nb[2], nb[3]),
            der_time(der, na[0], na[2], na[3]))


def signed_parts(der):
    """(to-be-signed DER, signature bytes) of a certificate or CRL."""
    _, cs, ce = der_tlv(der, 0)
    tbs, _alg, sig = der_children(der, cs, ce)
    # BIT STRING: first value octet is the unused-bits count.
    return der[tbs[1]:tbs[3]], der[sig[2] + 1:sig[3]]


def pem_to_der(text, label=None):
    m = re.search(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----",
                  text, re.S)
    if not m or (label and m.group(1) != label):
        raise ValueError("no PEM %s block" % (label or ""))
    return base64.b64decode("".join(m.group(2).split()))


def der_to_pem(der, label):
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (
        label, "\n".join(lines), label)


# ---------------------------------------------------------------------------
# openssl plumbing

def openssl(*args, input=None, check=True):
    p = subprocess.run([OPENSSL] + [str(a) for a in args], input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (
            " ".join(str(a) for a in args), p.returncode,
            p.stderr.decode(errors="replace")))
    return p


def gentime(epoch):
    """YYYYMMDDHHMMSSZ; `openssl ca` turns it into UTCTime where RFC 5280
    wants one."""
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(epoch))


def utctime(epoch):
    """YYMMDDHHMMSSZ, the only form `openssl ca` reads in index.txt."""
    return time.strftime("%y%m%d%H%M%SZ", time.gmtime(epoch))


CONFIG_HEAD = """\
# Generated by tests/pki/mkpki.py; used through OPENSSL_CONF.
[req]
distinguished_name = req_dn
string_mask = utf8only
[req_dn]

[policy_any]
commonName = supplied

[v3_root]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_int]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_client]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_enc]
basicConstraints = critical,CA:false
keyUsage = critical,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_server_eku]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_no_eku]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_bjca]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
{oid_holder} = ASN1:UTF8String:JJ{org_a}
{oid_credit} = ASN1:PRINTABLESTRING:{uscc_a}

[v3_bjca_other]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
{oid_holder} = ASN1:UTF8String:JJ{org_b}
{oid_credit} = ASN1:PRINTABLESTRING:{uscc_b}

[v3_bjca_uid]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
{oid_uid} = ASN1:UTF8String:JJ{org_d}

[v3_server_ca]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_server]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[crl_ext]
authorityKeyIdentifier = keyid:always
"""

CA_SECTION = """
[ca_{sect}]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = {md}
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
crl_extensions = crl_ext
"""


class Builder:
    def __init__(self, outdir, now):
        self.out = os.path.abspath(outdir)
        self.now = int(now)
        self.work = os.path.join(self.out, "work")
        self.cnf = os.path.join(self.work, "openssl.cnf")
        self.codes = make_codes()
        self.leaves = leaf_table(self.codes)
        self.serial = 0x1000
        self.certs = {}   # name -> dict(pem, key, type, der, serial, dn)
        os.environ["OPENSSL_CONF"] = self.cnf

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def t(self, offset):
        return self.now + offset

    # -- setup --------------------------------------------------------------

    def prepare(self):
        for d in ("ca", "crl", "crl-all", "crl-der", "crl-badsig",
                  "crl-stale", "crl-old", "leaf", "server", "work"):
            shutil.rmtree(self.path(d), ignore_errors=True)
            os.makedirs(self.path(d))
        for f in ("manifest.json", "now.txt"):
            if os.path.exists(self.path(f)):
                os.unlink(self.path(f))
        c = self.codes
        text = CONFIG_HEAD.format(oid_holder=OID_BJCA_HOLDER,
                                  oid_credit=OID_BJCA_CREDIT,
                                  oid_uid=OID_BJCA_UID, **c)
        ca_names = [c[0] for c in CAS] + ["server-ca", "impostor-int"]
        for name in ca_names:
            d = os.path.join(self.work, "ca-" + name)
            os.makedirs(os.path.join(d, "newcerts"))
            open(os.path.join(d, "index.txt"), "w").close()
            with open(os.path.join(d, "index.txt.attr"), "w") as f:
                f.write("unique_subject = no\n")
            text += CA_SECTION.format(sect=name, dir=d,
                                      md="sm3" if name.startswith("sm2")
                                      else "sha256")
        with open(self.cnf, "w") as f:
            f.write(text)

    # -- keys and requests --------------------------------------------------

    def new_key(self, keyfile, ktype):
        if ktype == "rsa":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", keyfile)
        elif ktype == "ec":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", keyfile)
        elif ktype == "sm2":
            openssl("genpkey", "-algorithm", "SM2", "-out", keyfile)
        else:
            raise ValueError(ktype)
        os.chmod(keyfile, 0o600)

    def csr(self, name, keyfile, ktype, subj):
        out = os.path.join(self.work, name + ".csr")
        args = ["req", "-new", "-utf8", "-key", keyfile, "-subj", subj,
                "-out", out]
        if ktype == "sm2":
            args += ["-sm3", "-sigopt", SM2_SIGOPT]
        openssl(*args)
        return out

    # -- issuing ------------------------------------------------------------

    def ca_sign(self, sect, csr, out, ext, nb, na, issuer=None,
                selfsign_key=None, sm2=False, extfile=None):
        """Issue one certificate with `openssl ca` and an explicit serial."""
        self.serial += 1
        serial = "%X" % self.serial
        if len(serial) % 2:
            serial = "0" + serial
        d = os.path.join(self.work, "ca-" + sect)
        with open(os.path.join(d, "serial"), "w") as f:
            f.write(serial + "\n")
        args = ["ca", "-batch", "-notext", "-preserveDN", "-utf8",
                "-config", self.cnf, "-name", "ca_" + sect,
                "-in", csr, "-out", out, "-startdate", gentime(nb),
                "-enddate", gentime(na)]
        if extfile:
            args += ["-extfile", extfile, "-extensions", ext]
        else:
            args += ["-extensions", ext]
        if selfsign_key:
            args += ["-selfsign", "-keyfile", selfsign_key]
        else:
            args += ["-cert", self.certs[issuer]["pem"],
                     "-keyfile", self.certs[issuer]["key"]]
        if sm2:
            args += ["-md", "sm3", "-sigopt", SM2_SIGOPT,
                     "-vfyopt", SM2_SIGOPT]
        openssl(*args)
        with open(out) as f:
            der = pem_to_der(f.read(), "CERTIFICATE")
        # Rewrite as one bare PEM block, the form every consumer expects.
        with open(out, "w") as f:
            f.write(der_to_pem(der, "CERTIFICATE"))
        return serial, der

    def make_ca(self, name, subj, parent, ktype, ext, nb, na):
        pem = self.path("ca", name + ".pem")
        key = self.path("ca", name + ".key")
        self.new_key(key, ktype)
        csr = self.csr("ca-" + name, key, ktype, subj)
        sect = parent if parent else name
        serial, der = self.ca_sign(
            sect, csr, pem, ext, self.t(nb), self.t(na), issuer=parent,
            selfsign_key=None if parent else key, sm2=(ktype == "sm2"))
        self.certs[name] = dict(pem=pem, key=key, type=ktype, der=der,
                                serial=serial, dn=subj, na=self.t(na))

    def make_leaf(self, name, spec):
        pem = self.path("leaf", name + ".pem")
        key = self.path("leaf", name + ".key")
        issuer = spec["issuer"]
        if spec["key"].startswith("same:"):
            shutil.copyfile(self.path("leaf", spec["key"][5:] + ".key"), key)
            os.chmod(key, 0o600)
            ktype = self.certs[spec["key"][5:]]["type"]
        else:
            ktype = spec["key"]
            self.new_key(key, ktype)
        org = spec.get("org", "certreg test unit " + name)
        subj = "/C=CN/ST=Beijing/L=Beijing/O=%s" % org
        if spec.get("orgid"):
            subj += "/organizationIdentifier=%s" % spec["orgid"]
        subj += "/CN=%s" % name
        csr = self.csr("leaf-" + name, key, ktype, subj)
        serial, der = self.ca_sign(
            issuer, csr, pem, spec["ext"], self.t(spec["nb"]),
            self.t(spec["na"]), issuer=issuer, sm2=(ktype == "sm2"))
        if spec.get("corrupt"):
            # Flip a bit in the last octet of the signature BIT STRING (the
            # low octet of ECDSA's s): still well-formed DER, wrong signature.
            der = bytearray(der)
            der[-1] ^= 0x01
            der = bytes(der)
            with open(pem, "w") as f:
                f.write(der_to_pem(der, "CERTIFICATE"))
        with open(self.path("leaf", name + ".der"), "wb") as f:
            f.write(der)
        chain = [pem]
        cur = issuer
        while CA_PARENT.get(cur):           # intermediates, no root
            chain.append(self.certs[cur]["pem"])
            cur = CA_PARENT[cur]
        with open(self.path("leaf", name + ".chain.pem"), "w") as f:
            for p in chain:
                with open(p) as g:
                    f.write(g.read())
        self.certs[name] = dict(pem=pem, key=key, type=ktype, der=der,
                                serial=serial, dn=subj, na=self.t(spec["na"]))

    def make_server(self):
        """TLS server chain. Valid around both T and the real clock, since
        TLS clients check it against the real clock even when T is fixed."""
        real = int(time.time())
        lo, hi = min(self.now, real), max(self.now, real)
        key = self.path("ca", "server-ca.key")
        self.new_key(key, "ec")
        csr = self.csr("server-ca", key, "ec",
                       "/C=CN/O=%s/CN=certreg Test Server CA" % PKI_O)
        pem = self.path("ca", "server-ca.pem")
        self.ca_sign("server-ca", csr, pem, "v3_server_ca", lo - 365 * DAY,
                     hi + 3650 * DAY, selfsign_key=key)
        self.certs["server-ca"] = dict(pem=pem, key=key, type="ec")
        skey = self.path("server", "server.key")
        self.new_key(skey, "ec")
        csr = self.csr("server", skey, "ec",
                       "/C=CN/O=%s/CN=localhost" % PKI_O)
        spem = self.path("server", "server.pem")
        self.ca_sign("server-ca", csr, spem, "v3_server", lo - 1 * DAY,
                     hi + 825 * DAY, issuer="server-ca")
        self.certs["server"] = dict(pem=spem)
        self.bundle(self.path("server", "server.chain.pem"),
                    ["server", "server-ca"])

    # -- CRLs ---------------------------------------------------------------

    def gencrl(self, sect, signer, out, last, nxt, number, revoked):
        """One CRL by `openssl ca -gencrl`. The CA database is rewritten to
        hold exactly `revoked` (name, time, reason), so each CRL lists what
        its case needs with revocation times relative to T."""
        d = os.path.join(self.work, "ca-" + sect)
        with open(os.path.join(d, "index.txt"), "w") as f:
            for name, when, reason in revoked:
                c = self.certs[name]
                f.write("R\t%s\t%s,%s\t%s\tunknown\t%s\n" % (
                    utctime(c["na"]), utctime(when), reason, c["serial"],
                    c["dn"]))
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("%02X\n" % number)
        s = self.certs[signer]
        args = ["ca", "-gencrl", "-batch", "-config", self.cnf,
                "-name", "ca_" + sect, "-cert", s["pem"], "-keyfile", s["key"],
                "-crl_lastupdate", gentime(last),
                "-crl_nextupdate", gentime(nxt), "-out", out]
        if s["type"] == "sm2":
            args += ["-md", "sm3", "-sigopt", SM2_SIGOPT]
        openssl(*args)

    def revoked_list(self, ca, skip=()):
        return [(name, self.t(off), reason)
                for _, name, off, reason in REVOCATIONS.get(ca, [])
                if name not in skip]

    def make_crls(self):
        for ca in CRL_ISSUERS:
            self.gencrl(ca, ca, self.path("crl", ca + ".crl.pem"),
                        self.t(-1 * DAY), self.t(7 * DAY), CRL_NUMBER,
                        self.revoked_list(ca))
        # Variant directories are complete sets where only int.crl.pem
        # differs, so each isolates one property of int's CRL.
        for d in ("crl-all", "crl-der", "crl-badsig", "crl-stale", "crl-old"):
            for ca in CRL_ISSUERS:
                shutil.copyfile(self.path("crl", ca + ".crl.pem"),
                                self.path(d, ca + ".crl.pem"))
        os.unlink(self.path("crl-der", "int.crl.pem"))
        with open(self.path("crl", "int.crl.pem")) as f:
            der = pem_to_der(f.read(), "X509 CRL")
        with open(self.path("crl-der", "int.crl.der"), "wb") as f:
            f.write(der)
        # Superseded: older, still current, lower number, issued before
        # `revoked` was revoked.
        self.gencrl("int", "int", self.path("crl-old", "int.crl.pem"),
                    self.t(-5 * DAY), self.t(2 * DAY), CRL_NUMBER_OLD,
                    self.revoked_list("int", skip=("revoked",)))
        # Stale: nextUpdate passed.
        self.gencrl("int", "int", self.path("crl-stale", "int.crl.pem"),
                    self.t(-10 * DAY), self.t(-1 * DAY), CRL_NUMBER_STALE,
                    self.revoked_list("int"))
        # Forged: int's name, int's key identifier in the AKID, another key.
        self.make_impostor()
        self.gencrl("impostor-int", "impostor-int",
                    self.path("crl-badsig", "int.crl.pem"), self.t(-1 * DAY),
                    self.t(7 * DAY), CRL_NUMBER + 1, self.revoked_list("int"))

    def make_impostor(self):
        ski = cert_ski(self.certs["int"]["der"])
        ext = os.path.join(self.work, "impostor.cnf")
        with open(ext, "w") as f:
            f.write("[v3_impostor]\nbasicConstraints = critical,CA:true\n"
                    "keyUsage = critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier = %s\n" % ski.hex())
        key = os.path.join(self.work, "impostor-int.key")
        self.new_key(key, "ec")
        csr = self.csr("impostor-int", key, "ec", INT_DN)
        pem = os.path.join(self.work, "impostor-int.pem")
        self.ca_sign("impostor-int", csr, pem, "v3_impostor",
                     self.t(-365 * DAY), self.t(3650 * DAY),
                     selfsign_key=key, extfile=ext)
        self.certs["impostor-int"] = dict(pem=pem, key=key, type="ec")

    # -- bundles and manifest ----------------------------------------------

    def bundle(self, out, names):
        with open(out, "w") as f:
            for n in names:
                with open(self.certs[n]["pem"]) as g:
                    f.write(g.read())

    def manifest(self):
        leaves = {}
        for name, spec in self.leaves.items():
            der = self.certs[name]["der"]
            spki, nb, na = cert_fields(der)
            leaves[name] = {
                "pem": "leaf/%s.pem" % name,
                "key": "leaf/%s.key" % name,
                "chain": "leaf/%s.chain.pem" % name,
                "der": "leaf/%s.der" % name,
                "issuer": spec["issuer"],
                "algorithm": self.certs[name]["type"],
                "serial": self.certs[name]["serial"].lower(),
                "key_id": hashlib.sha256(spki).hexdigest(),
                "sha256": hashlib.sha256(der).hexdigest(),
                "holder_id": spec.get("holder_id"),
                "credit_code": spec.get("credit_code"),
                "not_before": nb,
                "not_after": na,
                "expected": spec["expected"],
                "expected_skew0": spec.get("expected_skew0",
                                           spec["expected"]),
            }
        c = self.codes
        m = {
            "now": self.now,
            "credit_code": c["uscc_a"],
            "credit_code_invalid": c["uscc_invalid"],
            "credit_codes": {"bjca": c["uscc_a"], "bjca-other": c["uscc_b"],
                             "orgid": c["uscc_c"]},
            "sm2_id": SM2_ID,
            "trust": "ca/trust.pem",
            "intermediates": "ca/intermediates.pem",
            "crl_dir": "crl-all",
            "server": {"cert": "server/server.pem", "key": "server/server.key",
                       "ca": "ca/server-ca.pem"},
            "leaves": leaves,
            # Outcome of a leaf when crl_dir is this set (revocation=require).
            "crl_sets": {
                "crl-all": {"rsa-ok": "OK", "revoked": "CERT_REVOKED",
                            "revoked-int": "CERT_REVOKED"},
                "crl-der": {"rsa-ok": "OK", "revoked": "CERT_REVOKED"},
                "crl-old": {"rsa-ok": "OK", "revoked": "OK"},
                "crl-stale": {"rsa-ok": "CERT_REVOCATION_UNKNOWN"},
                "crl-badsig": {"rsa-ok": "CERT_REVOCATION_UNKNOWN"},
            },
            "crl_numbers": {"crl": CRL_NUMBER, "crl-old": CRL_NUMBER_OLD,
                            "crl-stale": CRL_NUMBER_STALE,
                            "crl-badsig": CRL_NUMBER + 1},
        }
        with open(self.path("manifest.json"), "w") as f:
            json.dump(m, f, indent=2, ensure_ascii=False, sort_keys=True)
            f.write("\n")

    def build(self):
        self.prepare()
        for name, subj, parent, ktype, ext, nb, na in CAS:
            self.make_ca(name, subj, parent, ktype, ext, nb, na)
        for name, spec in self.leaves.items():
            self.make_leaf(name, spec)
        self.make_server()
        self.make_crls()
        self.bundle(self.path("ca", "trust.pem"), TRUST)
        self.bundle(self.path("ca", "intermediates.pem"), INTERMEDIATES)
        self.manifest()
        with open(self.path("now.txt"), "w") as f:
            f.write("%d\n" % self.now)


def cert_ski(der):
    """subjectKeyIdentifier value of a DER certificate."""
    _, cs, ce = der_tlv(der, 0)
    tbs = der_children(der, cs, ce)[0]
    for tag, _s, vs, ve in der_children(der, tbs[2], tbs[3]):
        if tag != 0xA3:
            continue
        _, es, ee = der_tlv(der, vs)
        for _t, ext_s, ext_vs, ext_ve in der_children(der, es, ee):
            parts = der_children(der, ext_vs, ext_ve)
            oid = der[parts[0][2]:parts[0][3]]
            if oid == bytes([0x55, 0x1D, 0x0E]):  # 2.5.29.14
                octets = parts[-1]
                _, ks, ke = der_tlv(der, octets[2])
                return der[ks:ke]
    raise ValueError("certificate has no subjectKeyIdentifier")


# ---------------------------------------------------------------------------
# Self-test: openssl verify must agree with the manifest.

# openssl verify error numbers (X509_V_ERR_*) -> contract outcome.
X509_ERR_OUTCOME = {
    9: "CERT_NOT_YET_VALID", 13: "CERT_NOT_YET_VALID",
    14: "CERT_NOT_YET_VALID",
    10: "CERT_EXPIRED",
    23: "CERT_REVOKED",
    26: "CERT_WRONG_USAGE",
    2: "CERT_UNTRUSTED", 4: "CERT_UNTRUSTED", 6: "CERT_UNTRUSTED",
    7: "CERT_UNTRUSTED", 18: "CERT_UNTRUSTED", 19: "CERT_UNTRUSTED",
    20: "CERT_UNTRUSTED", 21: "CERT_UNTRUSTED", 24: "CERT_UNTRUSTED",
    25: "CERT_UNTRUSTED", 27: "CERT_UNTRUSTED", 28: "CERT_UNTRUSTED",
    3: "CERT_REVOCATION_UNKNOWN", 8: "CERT_REVOCATION_UNKNOWN",
    11: "CERT_REVOCATION_UNKNOWN", 12: "CERT_REVOCATION_UNKNOWN",
    15: "CERT_REVOCATION_UNKNOWN", 16: "CERT_REVOCATION_UNKNOWN",
    33: "CERT_REVOCATION_UNKNOWN", 35: "CERT_REVOCATION_UNKNOWN",
    36: "CERT_REVOCATION_UNKNOWN",
}


def verify_outcome(outdir, name, attime, crl_dir="crl-all"):
    """Map `openssl verify` of leaf NAME at `attime` to a contract outcome.

    Returns (outcome, openssl's first error line or "OK"). Non-SM2 leaves
    only: openssl 3.0 cannot check the intermediate's or the CRL's SM2
    signature (see README)."""
    d = os.path.abspath(outdir)
    args = ["verify", "-x509_strict", "-purpose", "sslclient",
            "-CAfile", os.path.join(d, "ca", "trust.pem"),
            "-untrusted", os.path.join(d, "leaf", name + ".chain.pem"),
            "-crl_check_all", "-attime", str(attime)]
    for f in sorted(os.listdir(os.path.join(d, crl_dir))):
        args += ["-CRLfile", os.path.join(d, crl_dir, f)]
    args.append(os.path.join(d, "leaf", name + ".pem"))
    p = openssl(*args, check=False)
    text = p.stdout.decode(errors="replace") + p.stderr.decode(
        errors="replace")
    m = re.search(r"error (\d+) at (\d+) depth lookup: ?(.*)", text)
    if m:
        return (X509_ERR_OUTCOME.get(int(m.group(1)), "UNMAPPED"),
                m.group(0).strip())
    if p.returncode == 0 and re.search(r": OK\s*$", text):
        return "OK", "OK"
    return "UNMAPPED", text.strip().splitlines()[-1] if text else "?"


def sm2_raw_verify(der, signer_pem, distid=SM2_ID):
    """Check an SM2 signature of a certificate or CRL outside X.509 code:
    pkeyutl over the raw to-be-signed bytes, SM3, the given distid."""
    tbs, sig = signed_parts(der)
    with tempfile.TemporaryDirectory() as tmp:
        tf, sf, pf = (os.path.join(tmp, n) for n in ("tbs", "sig", "pub"))
        pub = openssl("x509", "-in", signer_pem, "-noout", "-pubkey").stdout
        for fname, data in ((tf, tbs), (sf, sig), (pf, pub)):
            with open(fname, "wb") as f:
                f.write(data)
        args = ["pkeyutl", "-verify", "-pubin", "-inkey", pf, "-rawin",
                "-digest", "sm3", "-in", tf, "-sigfile", sf]
        if distid is not None:
            args += ["-pkeyopt", "distid:" + distid]
        p = openssl(*args, check=False)
        return p.returncode == 0 and b"Verified Successfully" in p.stdout


def read_der(path):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"-----"):
        return pem_to_der(data.decode())
    return data


def selftest(outdir):
    d = os.path.abspath(outdir)
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    now = m["now"]
    failures = []
    checked = 0

    def expect(cond, what):
        nonlocal checked
        checked += 1
        if not cond:
            failures.append(what)

    for name, leaf in sorted(m["leaves"].items()):
        # key_id the way the contract spells it, through openssl.
        pub = openssl("x509", "-in", os.path.join(d, leaf["pem"]),
                      "-pubkey", "-noout").stdout
        spki = openssl("pkey", "-pubin", "-outform", "DER", input=pub).stdout
        expect(hashlib.sha256(spki).hexdigest() == leaf["key_id"],
               "%s: key_id differs from openssl's SPKI" % name)
        der = read_der(os.path.join(d, leaf["der"]))
        expect(hashlib.sha256(der).hexdigest() == leaf["sha256"],
               "%s: sha256 mismatch" % name)
        if leaf["algorithm"] == "sm2":
            continue
        got, why = verify_outcome(d, name, now)
        expect(got == leaf["expected_skew0"],
               "%s: openssl says %s (%s), manifest %s" % (
                   name, got, why, leaf["expected_skew0"]))
        if leaf["expected_skew0"] != leaf["expected"]:
            got, why = verify_outcome(d, name, now + 300)
            expect(got == leaf["expected"],
                   "%s at T+300: openssl says %s (%s), manifest %s" % (
                       name, got, why, leaf["expected"]))

    # CRL sets, seen through the leaves they are about. openssl verify
    # reads PEM CRLs only, so crl-der/ is checked with `openssl crl`.
    for crl_dir, cases in sorted(m["crl_sets"].items()):
        if crl_dir == "crl-der":
            continue
        for name, want in sorted(cases.items()):
            got, why = verify_outcome(d, name, now, crl_dir)
            expect(got == want, "%s with %s: openssl says %s (%s), want %s"
                   % (name, crl_dir, got, why, want))
    der_crl = os.path.join(d, "crl-der", "int.crl.der")
    p = openssl("crl", "-inform", "DER", "-in", der_crl, "-noout",
                "-CAfile", os.path.join(d, "ca", "int.pem"), check=False)
    expect(b"verify OK" in p.stdout + p.stderr, "crl-der/int.crl.der: "
           "signature does not verify")
    expect(read_der(der_crl) == read_der(os.path.join(d, "crl",
                                                      "int.crl.pem")),
           "crl-der/int.crl.der is not crl/int.crl.pem")
    for crl, signer, good in (("crl/root.crl.pem", "root", True),
                              ("crl/int.crl.pem", "int", True),
                              ("crl-old/int.crl.pem", "int", True),
                              ("crl-stale/int.crl.pem", "int", True),
                              ("crl-badsig/int.crl.pem", "int", False)):
        p = openssl("crl", "-in", os.path.join(d, crl), "-noout", "-CAfile",
                    os.path.join(d, "ca", signer + ".pem"), check=False)
        ok = b"verify OK" in p.stdout + p.stderr
        expect(ok == good, "%s: openssl crl -CAfile %s says %s" % (
            crl, signer, "OK" if ok else "failure"))

    # SM2: every signature on the path, over the default distinguishing id,
    # checked over the raw to-be-signed bytes; and without the id it fails.
    sm2 = [("ca/sm2-root.pem", "ca/sm2-root.pem"),
           ("ca/sm2-int.pem", "ca/sm2-root.pem"),
           ("crl/sm2-root.crl.pem", "ca/sm2-root.pem"),
           ("crl/sm2-int.crl.pem", "ca/sm2-int.pem")]
    sm2 += [(leaf["pem"], "ca/sm2-int.pem")
            for leaf in m["leaves"].values() if leaf["algorithm"] == "sm2"]
    for obj, signer in sm2:
        der = read_der(os.path.join(d, obj))
        expect(sm2_raw_verify(der, os.path.join(d, signer)),
               "%s: SM2 signature by %s with distid %s fails" % (
                   obj, signer, SM2_ID))
        expect(not sm2_raw_verify(der, os.path.join(d, signer), None),
               "%s: SM2 signature also verifies without distid" % obj)
    # And what openssl verify can do on its own: the leaf against sm2-int as
    # a partial-chain anchor, with -vfyopt (applied to the leaf only).
    for name, leaf in sorted(m["leaves"].items()):
        if leaf["algorithm"] != "sm2":
            continue
        p = openssl("verify", "-x509_strict", "-purpose", "sslclient",
                    "-partial_chain", "-attime", str(now),
                    "-CAfile", os.path.join(d, "ca", "sm2-int.pem"),
                    "-vfyopt", "distid:" + SM2_ID,
                    os.path.join(d, leaf["pem"]), check=False)
        text = p.stdout.decode() + p.stderr.decode()
        mm = re.search(r"error (\d+) at", text)
        got = X509_ERR_OUTCOME.get(int(mm.group(1)), "UNMAPPED") if mm \
            else "OK"
        # Revocation is not visible here (SM2 CRL not checkable by openssl).
        want = "OK" if leaf["expected"] == "CERT_REVOKED" else \
            leaf["expected"]
        expect(got == want, "%s: openssl partial-chain says %s, want %s" % (
            name, got, want))

    # Manifest invariants the tests rely on.
    L = m["leaves"]
    expect(L["renew-old"]["key_id"] == L["renew-new"]["key_id"],
           "renew-old/renew-new key ids differ")
    expect(L["bjca"]["key_id"] != L["bjca-renewed"]["key_id"],
           "bjca/bjca-renewed share a key")
    expect(uscc_valid(m["credit_code"]), "credit_code invalid")
    expect(not uscc_valid(m["credit_code_invalid"]),
           "credit_code_invalid is valid")

    if failures:
        for f in failures:
            print("FAIL " + f)
        print("mkpki selftest: %d of %d checks FAILED" % (len(failures),
                                                           checked))
        return 1
    print("mkpki selftest: %d checks passed (%d leaves, T=%d)" % (
        checked, len(m["leaves"]), now))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Build (or self-test) the certreg test PKI.")
    ap.add_argument("outdir")
    ap.add_argument("--now", type=int, default=None,
                    help="reference time T as a Unix epoch (default: now)")
    ap.add_argument("--selftest", action="store_true",
                    help="check an existing OUTDIR with openssl verify")
    a = ap.parse_args(argv)
    if a.selftest:
        return selftest(a.outdir)
    now = a.now if a.now is not None else int(time.time())
    os.makedirs(a.outdir, exist_ok=True)
    Builder(a.outdir, now).build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
