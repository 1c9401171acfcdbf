"""posttls-finger (Postfix's DANE reference client) against the same MX hosts: its STARTTLS,
certificate and DANE verdicts must agree with mxray's `domain` records."""

import pytest

from clients import finger_config, finger_dane_verdict, posttls_finger
from conftest import DOMAINS

# The TLS 1.0/1.1-only listeners: Postfix 3.7's client on Debian's OpenSSL 3.0 offers them
# STARTTLS and then fails the handshake ("legacy sigalg disallowed or unsupported"), even
# with tls_medium_cipherlist = ALL:@SECLEVEL=0 in its main.cf (tried). mxray measures them
# through its OpenSSL engine; openssl s_client is the cross-check there (test_openssl.py).
LEGACY_ONLY = {"tls10.test", "tls11.test", "exim-legacy.test"}
# OpenSSL below security level 2 verifies a 1024-bit RSA leaf; mxray's PKIX says weak_key.
WEAK_KEY = {"rsa1024.test"}


def finger_failed_on_legacy_tls(s) -> bool:
    return s.starttls_offered and not s.trust and "legacy sigalg disallowed" in s.text


@pytest.fixture(scope="session")
def finger(lab, workdir):
    """domain -> (session at level dane, session at level verify); run once per domain."""
    cfg = finger_config(workdir / "posttls-finger")
    return {d: (posttls_finger(d, "dane", lab.ca.pem, cfg, verbose=True),
                posttls_finger(d, "verify", lab.ca.pem, cfg)) for d in DOMAINS}


@pytest.mark.parametrize("domain", DOMAINS)
def test_dane_agrees(scan_ad, finger, domain):
    """`-l dane`: Postfix's DANE result is mxray's `dane` verdict."""
    mine = scan_ad["domain"][domain]["dane"]
    theirs = finger_dane_verdict(finger[domain][0])
    if theirs == "none|insecure":
        # Postfix did not apply DANE: no TLSA, or TLSA it must ignore because the chain to it
        # is not DNSSEC-secure (RFC 7672 §2.2); mxray names which of the two.
        assert mine in ("none", "insecure"), finger[domain][0].text
    else:
        assert mine == theirs, finger[domain][0].text


@pytest.mark.parametrize("domain", DOMAINS)
def test_starttls_agrees(scan_ad, finger, domain):
    """The STARTTLS offer and the completed handshake, as Postfix saw them at level `may`
    (which `dane` falls back to) — or no session at all where mxray has no host to probe."""
    rec = scan_ad["domain"][domain]
    s = finger[domain][0]
    if domain in LEGACY_ONLY:
        assert rec["starttls"] == "all" and rec["tls_legacy"], rec
        assert finger_failed_on_legacy_tls(s), s.text
    elif rec["starttls"] == "n/a":
        assert not s.connected, s.text
    elif rec["dane"] == "bogus":
        # Postfix does not connect when the TLSA lookup fails (it defers the mail: RFC 7672
        # §2.2 forbids delivery); mxray is a measurement, not a sender: it still probes and
        # reports the host's STARTTLS. The DANE verdicts agree (test_dane_agrees).
        assert s.tlsa_lookup_error and not s.connected, s.text
    elif rec["starttls"] == "all":
        assert s.starttls_offered and s.trust, s.text
    else:
        assert rec["starttls"] == "none"
        assert s.connected and not s.trust, s.text


@pytest.mark.parametrize("domain", DOMAINS)
def test_pkix_agrees(scan_ad, finger, domain):
    """`-l verify -F <test CA>`: Postfix's "Verified" (chain to a trusted CA and the MX host
    name) is mxray's pkix=all; anything less is pkix=none."""
    rec = scan_ad["domain"][domain]
    s = finger[domain][1]
    if domain in LEGACY_ONLY:
        assert finger_failed_on_legacy_tls(s), s.text
    elif domain in WEAK_KEY:
        assert rec["pkix"] == "none" and s.trust == "Verified", s.text
    elif rec["pkix"] == "n/a":
        assert s.trust == "", s.text
    elif rec["pkix"] == "all":
        assert s.trust == "Verified", s.text
    else:
        assert rec["pkix"] == "none"
        assert s.trust != "Verified" and s.cert_verification_failed, s.text


# Not: no mail host (null MX, NXDOMAIN); bogus TLSA or a failed TLSA lookup (Postfix does
# not connect).
TRANSCRIPT_DOMAINS = [d for d in DOMAINS if d not in ("null-mx.test", "nonexistent.test",
                                                       "bogus.test", "tlsa-servfail.test")]


@pytest.mark.parametrize("domain", TRANSCRIPT_DOMAINS)
def test_transcript_agrees(scan_ad, finger, domain):
    """Greeting and EHLO keywords of the first MX host: the same text for both clients."""
    s = finger[domain][0]
    probes = [p for p in scan_ad["smtp_probe"]
              if p["sni"] in scan_ad["domain"][domain]["mx_hosts"] or
              (scan_ad["domain"][domain]["mx_kind"] == "implicit" and p["sni"] == domain)]
    assert probes, f"no smtp_probe for {domain}"
    p = probes[0]
    assert s.banner and s.ehlo_keywords, s.text
    assert p["banner"].removeprefix("220 ").strip() == s.banner.strip(), (p["banner"], s.text)
    assert sorted(k.split(" ")[0].upper() for k in p["ehlo_keywords"]) == sorted(s.ehlo_keywords)
    assert p["starttls_advertised"] == s.starttls_offered


def test_shared_host_behind_unsigned_mx(scan_ad, finger):
    """RFC 7672 §2.2.1: Postfix uses the TLSA of a secure MX host even when the domain's MX
    RRset is insecure ("MX RRset insecure: log verified as trusted"), and the chain matches:
    it logs "Trusted", not "Verified". mxray keeps that host match in the probe (`dane =
    valid`) and calls the domain `insecure` (its MX RRset can be forged); behind the signed
    MX RRset the same host is "Verified" and `valid`."""
    unsigned = finger["shared.insecure.test"][0]
    assert unsigned.dane_matched and unsigned.trust == "Trusted", unsigned.text
    assert "MX RRset insecure" in unsigned.text, unsigned.text
    signed = finger["shared.test"][0]
    assert signed.dane_matched and signed.trust == "Verified", signed.text
    assert scan_ad["domain"]["shared.insecure.test"]["dane"] == "insecure"
    assert scan_ad["domain"]["shared.test"]["dane"] == "valid"
    probes = [p for p in scan_ad["smtp_probe"] if p["sni"] == "mx.shared.test"]
    assert probes and all(p["dane"] == "valid" for p in probes), probes
