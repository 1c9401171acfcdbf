"""`mxray scan` against the real servers: the `domain` posture of every lab domain."""

import pytest

from conftest import DOMAINS, EXIM, run_scan
from lab import MX_GOOD, UNBOUND_IP

# domain -> (mx_kind, starttls, pkix, dane, mta_sts, mta_sts_error, mta_sts_compliant, tls_rpt)
EXPECTED = {
    # DANE-EE 3 1 1 of the Postfix certificate, MTA-STS enforce covering the MX, TLS-RPT.
    "good.test": ("mx", "all", "all", "valid", "enforce", None, True, True),
    # DANE-TA 2 0 1 of the test CA (Postfix sends the CA in its chain).
    "dane-ta.test": ("mx", "all", "all", "valid", "none", None, None, False),
    "tlsa-mismatch.test": ("mx", "all", "all", "mismatch", "none", None, None, False),
    # DANE-EE ignores names and issuers (RFC 7672 §3.1.1): valid DANE, no PKIX.
    "dane-ee-self.test": ("mx", "all", "none", "valid", "none", None, None, False),
    # Secure TLSA, no STARTTLS: a DANE sender cannot deliver (RFC 7672 §2.2).
    "dane-no-starttls.test": ("mx", "none", "n/a", "no_tls", "none", None, None, False),
    # TLSA in an unsigned child zone: ignored (RFC 7672 §2.2).
    "insecure.test": ("mx", "all", "all", "insecure", "none", None, None, False),
    # Signed child whose TLSA RRSIG does not verify (MX and A are secure).
    "bogus.test": ("mx", "all", "all", "bogus", "none", None, None, False),
    "no-starttls.test": ("mx", "none", "n/a", "none", "none", None, None, False),
    "self-signed.test": ("mx", "all", "none", "none", "none", None, None, False),
    "expired.test": ("mx", "all", "none", "none", "none", None, None, False),
    "wrong-name.test": ("mx", "all", "none", "none", "none", None, None, False),
    "sts-testing.test": ("mx", "all", "all", "none", "testing", None, True, False),
    "sts-mx-outside.test": ("mx", "all", "all", "none", "enforce", None, False, False),
    "sts-invalid.test": ("mx", "all", "all", "none", "policy_invalid", None, None, False),
    # A mode-none policy without mx lines is valid but covers no MX (docs/verdicts.md).
    "sts-mode-none.test": ("mx", "all", "all", "none", "mode_none", None, False, False),
    "sts-charset.test": ("mx", "all", "all", "none", "enforce", None, True, False),
    "sts-404.test": ("mx", "all", "all", "none", "fetch_error", "http_status", None, False),
    "sts-redirect.test": ("mx", "all", "all", "none", "fetch_error", "redirect", None, False),
    "sts-content-type.test": ("mx", "all", "all", "none", "fetch_error", "content_type", None,
                              False),
    "sts-self-signed.test": ("mx", "all", "all", "none", "fetch_error", "cert", None, False),
    # RFC 7505: nothing to probe.
    "null-mx.test": ("null_mx", "n/a", "n/a", "none", "none", None, None, False),
    # RFC 5321 §5.1: no MX, the A record of the domain is the mail host.
    "implicit.test": ("implicit", "all", "all", "none", "none", None, None, False),
    # The MX name is a CNAME (the certificate carries both names).
    "cname-mx.test": ("mx", "all", "all", "none", "none", None, None, False),
    "nonexistent.test": ("none", "n/a", "n/a", "none", "none", None, None, False),
    # Exim (GnuTLS) with a test-CA certificate and DANE-EE.
    "exim.test": ("mx", "all", "all", "valid", "none", None, None, False),
    # Legacy TLS that rustls cannot speak: measured through the OpenSSL engine, so STARTTLS
    # counts and the chain is judged as any other (tls_legacy says which; test_legacy.py).
    "tls10.test": ("mx", "all", "all", "none", "none", None, None, False),
    "tls11.test": ("mx", "all", "all", "none", "none", None, None, False),
    "exim-legacy.test": ("mx", "all", "all", "none", "none", None, None, False),
    # A 1024-bit RSA key: TLS completes, but no current sender accepts the key (weak_key).
    "rsa1024.test": ("mx", "all", "none", "none", "none", None, None, False),
    # One DANE-EE host (signed zone, matching TLSA) used as MX by a signed domain and by an
    # unsigned one: the unsigned MX RRset can be forged, so that domain is not DANE-protected
    # by its own DNS (docs/verdicts.md, RFC 7672 §2.2.1); the probe keeps the host's match.
    "shared.test": ("mx", "all", "all", "valid", "none", None, None, False),
    "shared.insecure.test": ("mx", "all", "all", "insecure", "none", None, None, False),
    # Secure MX and A, the TLSA lookup answered SERVFAIL: RFC 7672 §2.2, Postfix defers.
    "tlsa-servfail.test": ("mx", "all", "all", "bogus", "none", None, None, False),
}

FIELDS = ("mx_kind", "starttls", "pkix", "dane", "mta_sts", "mta_sts_error",
          "mta_sts_compliant", "tls_rpt")


def posture(rec):
    return tuple(rec[f] for f in FIELDS)


def test_table_covers_every_domain():
    assert sorted(EXPECTED) == sorted(DOMAINS + ([] if EXIM else ["exim.test",
                                                                  "exim-legacy.test"]))


def test_second_mta_present():
    if not EXIM:
        pytest.skip("Exim could not be extracted (apt-get download failed)")
    assert "exim.test" in DOMAINS


@pytest.mark.parametrize("domain", DOMAINS)
def test_scan_posture(scan_ad, domain):
    rec = scan_ad["domain"].get(domain)
    assert rec is not None, f"no domain record for {domain}"
    got = dict(zip(FIELDS, posture(rec)))
    want = dict(zip(FIELDS, EXPECTED[domain]))
    assert got == want, f"{domain}: errors={rec['errors']}"


def test_dnssec_status_of_the_zones(scan_ad):
    """The MX RRsets' DNSSEC status as Unbound validated them."""
    mx = {d: r["mx_dnssec"] for d, r in scan_ad["domain"].items()}
    assert mx["good.test"] == "secure"
    assert mx["insecure.test"] == "insecure"
    assert mx["bogus.test"] == "secure"  # only the TLSA RRSIG is broken
    hosts = scan_ad["dns_host"]
    assert hosts["mx.bogus.test"]["tlsa_dnssec"] == "bogus"
    assert hosts["mx.insecure.test"]["tlsa_dnssec"] == "insecure"
    assert hosts["mx.good.test"]["tlsa_dnssec"] == "secure"


def test_good_domain_details(scan_ad, lab):
    rec = scan_ad["domain"]["good.test"]
    assert rec["mx_hosts"] == ["mx.good.test"]
    assert rec["tls_rpt_rua"] == ["mailto:tlsrpt@good.test"]
    assert rec["tlsrpt_results"] == []
    assert rec["errors"] == []
    host = scan_ad["dns_host"]["mx.good.test"]
    assert [(t["usage"], t["selector"], t["matching_type"], t["data"].lower())
            for t in host["tlsa"]] == [(3, 1, 1, lab.good_spki)]
    # The chain Postfix sends (leaf, test CA), and both in the certificate table.
    probe = next(p for p in scan_ad["smtp_probe"] if p["sni"] == "mx.good.test")
    chain = [lab.good.cert_sha256(), lab.ca.cert_sha256()]
    assert probe["chain_sha256"] == chain
    assert set(chain) <= {c["sha256"] for c in scan_ad["certificate"]}


def test_pkix_error_classes(scan_ad):
    """Which certificate problem mxray names for each bad listener."""
    by_sni = {p["sni"]: p for p in scan_ad["smtp_probe"]}
    assert by_sni["mx.expired.test"]["pkix_error"] == "expired"
    assert by_sni["mx.wrong-name.test"]["pkix_error"] == "name_mismatch"
    assert by_sni["mx.self-signed.test"]["pkix_error"] == "self_signed"
    assert by_sni["mx.good.test"]["pkix_valid"] is True


def test_mta_sts_policy_details(scan_ad):
    pol = scan_ad["mta_sts_policy"]
    assert pol["good.test"]["policy_id"] == "20261129T000000"
    assert pol["good.test"]["mx_patterns"] == ["mx.good.test"]
    assert pol["good.test"]["max_age"] == 86400
    assert pol["sts-charset.test"]["content_type"] == "text/plain; charset=utf-8"
    assert any(w.startswith("content_type_parameters") for w in pol["sts-charset.test"]["warnings"])
    assert pol["sts-404.test"]["http_status"] == 404
    assert pol["sts-redirect.test"]["http_status"] == 301
    assert pol["sts-content-type.test"]["content_type"].startswith("text/html")


def test_missing_despite_policy(scan_ad):
    """No STARTTLS on a host with a secure TLSA RRset is a stripping signal."""
    rec = scan_ad["domain"]["dane-no-starttls.test"]
    assert "missing_despite_policy" in rec["stripping_signals"]
    assert scan_ad["domain"]["no-starttls.test"]["stripping_signals"] == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_validate_mode_equals_ad_mode(scan_ad, scan_validate, domain):
    """`--dnssec validate` straight at NSD gives the same posture as Unbound's AD bit."""
    assert posture(scan_validate["domain"][domain]) == posture(scan_ad["domain"][domain])


SHARED = ["shared.test", "shared.insecure.test"]


def test_shared_dane_host(scan_ad):
    """One probe of mx.shared.test serves both domains; what depends on the domain (whether
    DANE applies, the signals and RFC 8460 results) is judged per domain."""
    doms = scan_ad["domain"]
    assert doms["shared.test"]["mx_dnssec"] == "secure"
    assert doms["shared.insecure.test"]["mx_dnssec"] == "insecure"
    for d in SHARED:
        assert doms[d]["mx_hosts"] == ["mx.shared.test"]
        assert doms[d]["stripping_suspected"] is False, doms[d]
        assert doms[d]["stripping_signals"] == [], doms[d]
        assert doms[d]["tlsrpt_results"] == [], doms[d]
        assert doms[d]["errors"] == [], doms[d]
    probes = [p for p in scan_ad["smtp_probe"] if p["sni"] == "mx.shared.test"]
    assert [(p["ip"], p["port"]) for p in probes] == [(MX_GOOD, 25)], probes
    # The host-level match stays in the probe and the host record.
    assert probes[0]["dane"] == "valid", probes[0]
    host = scan_ad["dns_host"]["mx.shared.test"]
    assert host["tlsa_dnssec"] == "secure" and host["a_dnssec"] == "secure", host


def _comparable(rec):
    return {k: v for k, v in rec.items() if k not in ("scan_id", "scanned_at")}


def test_shared_host_in_both_orders(lab, workdir, scan_ad):
    """The signed domain first, then the unsigned one first: identical domain records (and
    the same as in the scan of every domain)."""
    scans = {name: run_scan(lab, workdir, f"shared-{name}",
                            ["--resolver", f"{UNBOUND_IP}:53", "--dnssec", "ad"], domains=order)
             for name, order in (("signed-first", SHARED), ("unsigned-first", SHARED[::-1]))}
    for d in SHARED:
        first = _comparable(scans["signed-first"]["domain"][d])
        assert first == _comparable(scans["unsigned-first"]["domain"][d]), d
        assert first == _comparable(scan_ad["domain"][d]), d
    assert scans["signed-first"]["domain"]["shared.test"]["dane"] == "valid"
    assert scans["unsigned-first"]["domain"]["shared.insecure.test"]["dane"] == "insecure"


def test_failed_tlsa_lookup_is_bogus(scan_ad):
    """A TLSA lookup that fails behind a secure A record: DANE `bogus`, and a sender would
    report `dnssec-invalid` (RFC 7672 §2.2, RFC 8460 §4.3) — never `none`."""
    rec = scan_ad["domain"]["tlsa-servfail.test"]
    assert rec["mx_dnssec"] == "secure", rec
    assert "dnssec-invalid" in rec["tlsrpt_results"], rec
    host = scan_ad["dns_host"]["mx.tlsa-servfail.test"]
    assert host["a_dnssec"] == "secure", host
    assert host["tlsa_rcode"] == "servfail", host
    assert host["tlsa"] == [], host
    assert host["tlsa_dnssec"] not in ("secure", "insecure"), host
    probes = [p for p in scan_ad["smtp_probe"] if p["sni"] == "mx.tlsa-servfail.test"]
    assert probes and all(p["dane"] == "bogus" for p in probes), probes
