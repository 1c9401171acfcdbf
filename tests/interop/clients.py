"""The reference clients, run unmodified, and parsers of what they print.

- posttls-finger (Postfix's TLS/DANE reference client): resolves through /etc/resolv.conf,
  which inside the suite's namespace points at the lab's Unbound (`options trust-ad`, so
  glibc keeps the AD bit Postfix's DANE needs).
- mta-sts-query (postfix-mta-sts-resolver): same resolver; the test CA via SSL_CERT_FILE.
- openssl s_client -starttls smtp: one session to an (IP, name) pair.
"""

import base64
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


def _run(cmd, env=None, timeout=60) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    return r.stdout + r.stderr


# ---------------------------------------------------------------- posttls-finger

@dataclass
class FingerSession:
    """What one posttls-finger run printed, reduced to the facts the tests compare."""

    text: str
    connected: bool = False
    banner: str = ""
    ehlo_keywords: list = field(default_factory=list)
    starttls_offered: bool = False
    # "Anonymous", "Untrusted", "Trusted" or "Verified" when TLS was established.
    trust: str = ""
    tls_protocol: str = ""
    dane_matched: bool = False
    dane_mismatch: bool = False
    tlsa_lookup_error: bool = False
    tls_required_not_offered: bool = False
    cert_verification_failed: str = ""
    # With -v: Postfix found TLSA records (it asks for them only when the MX and address
    # lookups were DNSSEC-secure, RFC 7672 §2.2).
    tlsa_found: bool = False


def parse_finger(text: str) -> FingerSession:
    s = FingerSession(text)
    in_first_ehlo = seen_ehlo = first_reply_line = False
    for raw in text.splitlines():
        line = raw.removeprefix("posttls-finger: ")
        if line.startswith(("Connected to ", "< 220 ")):
            s.connected = True
        if line.startswith("< 220 ") and not s.banner:
            s.banner = line[len("< 220 "):]
        elif line.startswith("> EHLO"):
            in_first_ehlo = not seen_ehlo
            seen_ehlo = True
            first_reply_line = True
        elif in_first_ehlo and line.startswith("< 250"):
            if not first_reply_line:
                s.ehlo_keywords.append(line[6:].split(" ")[0].upper())
            first_reply_line = False
            if line.startswith("< 250 "):
                in_first_ehlo = False
        m = re.match(r"(Anonymous|Untrusted|Trusted|Verified) TLS connection established to .*?: "
                     r"(TLSv[\d.]+)", line)
        if m:
            s.trust, s.tls_protocol = m.group(1), m.group(2)
        if "Matched DANE" in line:
            s.dane_matched = True
        if "no matching DANE TLSA records" in line:
            s.dane_mismatch = True
        if line.startswith("dns_get_answer: type TLSA for _"):
            s.tlsa_found = True
        if "TLSA lookup error" in line:
            s.tlsa_lookup_error = True
        if "TLS is required, but was not offered" in line:
            s.tls_required_not_offered = True
        m = re.search(r"certificate verification failed for .*?: (.*)$", line)
        if m:
            s.cert_verification_failed = m.group(1)
    s.starttls_offered = "STARTTLS" in s.ehlo_keywords
    return s


def posttls_finger(domain: str, level: str, ca_file: Path, config_dir: Path,
                   verbose: bool = False) -> FingerSession:
    """`posttls-finger -l LEVEL -F CA DOMAIN` (MX lookup, the first MX host)."""
    env = dict(os.environ, MAIL_CONFIG=str(config_dir))
    return parse_finger(_run(["posttls-finger", "-t", "5", "-T", "10", "-l", level,
                              "-F", str(ca_file), *(["-v"] if verbose else []), domain],
                             env=env))


def finger_config(directory: Path) -> Path:
    """A private main.cf for posttls-finger (the host's /etc/postfix is not read)."""
    directory.mkdir(exist_ok=True)
    # dnssec_probe: the lab's Unbound has no root zone; the probe would only warn.
    (directory / "main.cf").write_text("compatibility_level = 3.6\ndnssec_probe =\n")
    return directory


def finger_dane_verdict(s: FingerSession) -> str:
    """posttls-finger's DANE outcome in mxray's vocabulary; `none|insecure` when Postfix did
    not apply DANE (no TLSA, or TLSA that is not DNSSEC-secure: it falls back to `may`)."""
    if s.tlsa_lookup_error:
        return "bogus"
    if s.tls_required_not_offered or (s.tlsa_found and s.connected and not s.starttls_offered):
        # posttls-finger just QUITs; Postfix's smtp(8) defers: "TLS is required, but was not
        # offered by host".
        return "no_tls"
    if s.dane_mismatch:
        return "mismatch"
    if s.dane_matched and s.trust == "Verified":
        return "valid"
    return "none|insecure"


# ---------------------------------------------------------------- mta-sts-query

@dataclass
class StsQuery:
    text: str
    result: str  # VALID, FETCH_ERROR, NONE, NOT_CHANGED, or "?"
    mode: str = ""
    mx: list = field(default_factory=list)


def mta_sts_query(domain: str, ca_file: Path) -> StsQuery:
    query = Path(os.environ.get("MXRAY_PYTHON", "python3")).parent / "mta-sts-query"
    env = dict(os.environ, SSL_CERT_FILE=str(ca_file))
    text = _run([str(query), domain], env=env)
    m = re.search(r"STSFetchResult\.(\w+)", text)
    q = StsQuery(text, m.group(1) if m else "?")
    m = re.search(r"'mode': '(\w+)'", text)
    if m:
        q.mode = m.group(1)
    m = re.search(r"'mx': \[([^\]]*)\]", text)
    if m:
        q.mx = re.findall(r"'([^']*)'", m.group(1))
    return q


# ---------------------------------------------------------------- openssl s_client

@dataclass
class SClient:
    text: str
    starttls_missing: bool
    verify_code: int | None
    protocol: str
    # SHA-256 of each certificate the server sent, leaf first (-showcerts).
    chain_sha256: list
    # The cipher suite in mxray's spelling (IANA, TLS 1.3 suites as TLS13_...), "" if none.
    cipher: str = ""
    # The key exchange as mxray names it (X25519, secp256r1, DH 2048), "" when none.
    kx_group: str = ""


# Every cipher suite this OpenSSL knows: its own name -> the IANA name.
_STDNAMES: dict = {}


def iana_cipher(openssl_name: str) -> str:
    if not _STDNAMES:
        # Lines of `STDNAME - OPENSSLNAME VERSION Kx=...`.
        for line in _run(["openssl", "ciphers", "-stdname", "ALL:@SECLEVEL=0"]).splitlines():
            std, sep, rest = line.partition(" - ")
            if sep and rest.split():
                _STDNAMES[rest.split()[0]] = std.strip()
    std = _STDNAMES.get(openssl_name, openssl_name)
    tls13 = ("TLS_AES_", "TLS_CHACHA20_")
    return "TLS13_" + std[4:] if std.startswith(tls13) else std


def _kx(text: str) -> str:
    m = re.search(r"^Server Temp Key: (.*)$", text, re.M)
    if not m:
        return ""
    parts = [p.strip() for p in m.group(1).split(",")]
    curves = {"prime256v1": "secp256r1", "secp384r1": "secp384r1", "secp521r1": "secp521r1"}
    if parts[0] in ("X25519", "X448"):
        return parts[0]
    if parts[0] == "ECDH" and len(parts) > 1:
        return curves.get(parts[1], parts[1])
    if parts[0] == "DH" and len(parts) > 1:
        return "DH " + parts[1].split()[0]
    return parts[0]


def s_client(ip: str, name: str, ca_file: Path, check_name: bool = True, port: int = 25,
             starttls: bool = True) -> SClient:
    """One session; with `check_name` the certificate must also match `name` (OpenSSL then
    reports the name error rather than a chain error when both apply). Every cipher at
    security level 0, as mxray's OpenSSL engine offers them, so legacy servers answer."""
    text = _run(["openssl", "s_client", *(["-starttls", "smtp"] if starttls else []),
                 "-connect", f"{ip}:{port}", "-cipher", "ALL:@SECLEVEL=0",
                 "-servername", name, "-CAfile", str(ca_file), "-name", "scanner.interop.test",
                 "-showcerts",
                 *(["-verify_hostname", name] if check_name else [])], timeout=30)
    m = re.search(r"Verify return code: (\d+)", text)
    # "New, <version>, Cipher is <name>": the version there is the cipher's (TLSv1 for a CBC
    # suite on TLS 1.1); the session's "Protocol  :" line has the negotiated one (s_client
    # prints no session block for TLS 1.3, whose suites name their version right).
    c = re.search(r"^New, (TLSv[\d.]+|SSLv3), Cipher is (\S+)", text, re.M)
    v = re.search(r"^\s*Protocol\s*:\s*(\S+)", text, re.M)
    chain = [
        hashlib.sha256(base64.b64decode("".join(b.split()))).hexdigest()
        for b in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text,
                            re.S)
    ]
    return SClient(text, "Didn't find STARTTLS" in text, int(m.group(1)) if m else None,
                   (v or c).group(1) if c else "", chain, iana_cipher(c.group(2)) if c else "",
                   _kx(text))
