"""Servers rustls cannot talk to, measured through mxray's second TLS engine (OpenSSL): Postfix
listeners offering only TLS 1.0, only TLS 1.1, or TLS 1.2 with a 1024-bit RSA key, and Exim
(GnuTLS) offering only TLS 1.0. A normal listener is still probed once, with rustls only; the
session counts come from Postfix's own log."""

import json
import os
import subprocess
import time

import pytest

from conftest import EXIM
from lab import MX_GOOD, MX_RSA1024, MX_TLS10, UNBOUND_IP

LEGACY = {
    # domain -> (MX host, tls_version, tls_fallback_reason, tls_legacy)
    "tls10.test": ("mx.tls10.test", "TLSv1.0", "protocol_version", True),
    "tls11.test": ("mx.tls11.test", "TLSv1.1", "protocol_version", True),
    "rsa1024.test": ("mx.rsa1024.test", "TLSv1.2", "certificate_key", False),
}
if EXIM:
    # GnuTLS answers a ClientHello without a version it accepts with handshake_failure.
    LEGACY["exim-legacy.test"] = ("mx.exim-legacy.test", "TLSv1.0", "handshake_failure", True)


def probe_of(scan, host):
    probes = [p for p in scan["smtp_probe"] if p["sni"] == host]
    assert len(probes) == 1, probes
    return probes[0]


@pytest.mark.parametrize("domain", sorted(LEGACY))
def test_legacy_server_is_measured_with_openssl(scan_ad, domain):
    host, version, reason, legacy = LEGACY[domain]
    p = probe_of(scan_ad, host)
    assert p["result"] == "starttls_ok", p["error_detail"]
    assert p["error_class"] is None
    assert p["tls_engine"] == "openssl"
    assert p["tls_fallback_reason"] == reason, p["tls_fallback_detail"]
    assert p["tls_version"] == version
    assert p["tls_legacy"] is legacy
    # mxray's own limit is never a stripping signal, and the first session is kept.
    assert p["stripping_signals"] == []
    assert "C: STARTTLS" in p["tls_fallback_transcript"]
    assert "[TLS handshake, openssl]" in p["transcript"]
    assert p["post_tls_ehlo_keywords"], p["transcript"]
    assert scan_ad["domain"][domain]["tls_legacy"] is legacy


def test_weak_key_is_a_pkix_error_not_a_handshake_failure(scan_ad):
    p = probe_of(scan_ad, "mx.rsa1024.test")
    assert (p["pkix_valid"], p["pkix_error"]) == (False, "weak_key")
    leaf = next(c for c in scan_ad["certificate"] if c["sha256"] == p["chain_sha256"][0])
    assert leaf["key_type"] == "RSA 1024"


def test_modern_servers_stay_with_rustls(scan_ad):
    for host in ("mx.good.test", "mx.self-signed.test", "mx.expired.test"):
        p = probe_of(scan_ad, host)
        assert p["tls_engine"] == "rustls", host
        assert p["tls_fallback_reason"] is None and p["tls_fallback_transcript"] == ""
        assert p["tls_legacy"] is False
    assert scan_ad["domain"]["good.test"]["tls_legacy"] is False
    # No STARTTLS, no handshake, no engine.
    assert probe_of(scan_ad, "mx.no-starttls.test")["tls_engine"] is None


def mxray_smtp(lab, *args):
    cmd = [os.environ["MXRAY_BIN"], "smtp", *args, "--resolver", f"{UNBOUND_IP}:53",
           "--ca-file", str(lab.ca.pem), "--allow-private", "--timeout", "5",
           "--ehlo-name", "scanner.interop.test", "--jsonl", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [rec for rec in map(json.loads, r.stdout.splitlines())
            if rec["record"] == "smtp_probe"], r.stderr


def sessions_after(lab, listener, before, want):
    """Postfix's connection count for `listener` once it has settled (postlogd writes
    asynchronously): waits for `want` new sessions, then a moment more for any extra."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and lab.sessions(listener) - before < want:
        time.sleep(0.1)
    time.sleep(1.0)
    return lab.sessions(listener) - before


def test_a_legacy_server_gets_two_sessions_a_modern_one_one(lab):
    before = lab.sessions(MX_TLS10)
    probes, err = mxray_smtp(lab, MX_TLS10, "--sni", "mx.tls10.test")
    assert [p["tls_engine"] for p in probes] == ["openssl"], err
    assert "engine=openssl fallback=protocol_version" in err
    assert sessions_after(lab, MX_TLS10, before, 2) == 2

    before = lab.sessions(MX_GOOD)
    probes, err = mxray_smtp(lab, MX_GOOD, "--sni", "mx.good.test")
    assert [(p["tls_engine"], p["tls_version"]) for p in probes] == [("rustls", "TLSv1.3")], err
    assert sessions_after(lab, MX_GOOD, before, 1) == 1

    before = lab.sessions(MX_RSA1024)
    probes, err = mxray_smtp(lab, MX_RSA1024, "--sni", "mx.rsa1024.test")
    assert [p["tls_fallback_reason"] for p in probes] == ["certificate_key"], err
    assert sessions_after(lab, MX_RSA1024, before, 2) == 2
