"""openssl s_client -starttls smtp for every (IP, name) mxray probed: the STARTTLS offer, the
certificate verification result, the protocol version and the certificate chain the server
sent agree with the smtp_probe record."""

import pytest

from clients import s_client
from conftest import EXIM
from lab import MX_EXIM, MX_EXPIRED, MX_GOOD, MX_PLAIN, MX_SELF, MX_WRONG

# OpenSSL X509_V_ERR_* codes -> mxray pkix_error.
VERIFY = {
    0: None,
    10: "expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    18: "self_signed",  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    62: "name_mismatch",  # X509_V_ERR_HOSTNAME_MISMATCH
}


@pytest.fixture(scope="session")
def probes(scan_ad):
    seen = {}
    for p in scan_ad["smtp_probe"]:
        seen.setdefault((p["ip"], p["sni"]), p)
    return seen


def test_probed_every_listener(probes):
    want = {MX_GOOD, MX_PLAIN, MX_SELF, MX_EXPIRED, MX_WRONG} | ({MX_EXIM} if EXIM else set())
    assert {ip for ip, _ in probes} == want


def test_s_client_agrees(lab, probes):
    bad = []
    for (ip, name), p in sorted(probes.items()):
        # The chain first (without the name), then the name: mxray names one error class,
        # a chain error before a name error (webpki's order), while OpenSSL's final verify
        # code with -verify_hostname is the name error when both apply (a self-signed
        # certificate for another name).
        s = s_client(ip, name, lab.ca.pem, check_name=False)
        if s.verify_code == 0:
            s = s_client(ip, name, lab.ca.pem, check_name=True)
        if s.starttls_missing:
            ok = not p["starttls_advertised"] and p["result"] == "no_starttls"
        else:
            ok = (p["result"] == "starttls_ok"
                  and s.verify_code in VERIFY
                  and VERIFY[s.verify_code] == p["pkix_error"]
                  and (s.verify_code == 0) == bool(p["pkix_valid"])
                  and s.chain_sha256 == p["chain_sha256"] and s.chain_sha256
                  and s.protocol.replace("v", "").replace("_", "")
                  == (p["tls_version"] or "").replace("v", "").replace("_", ""))
        if not ok:
            bad.append(f"{ip} {name}: openssl missing_starttls={s.starttls_missing} "
                       f"verify={s.verify_code} protocol={s.protocol}; mxray result={p['result']} "
                       f"pkix_valid={p['pkix_valid']} pkix_error={p['pkix_error']} "
                       f"tls_version={p['tls_version']} "
                       f"same chain={s.chain_sha256 == p['chain_sha256']}")
    assert not bad, "\n".join(bad)
