"""openssl s_client -starttls smtp for every (IP, name) mxray probed: the STARTTLS offer, the
certificate verification result, the protocol version, the cipher suite, the key exchange and
the certificate chain the server sent agree with the smtp_probe record — whichever of mxray's
TLS engines produced it (the legacy listeners are measured through OpenSSL, the others
through rustls)."""

import pytest

from clients import s_client
from conftest import EXIM
from lab import (MX_EXIM, MX_EXIM_LEGACY, MX_EXPIRED, MX_GOOD, MX_PLAIN, MX_RSA1024, MX_SELF,
                 MX_TLS10, MX_TLS11, MX_WRONG)

# OpenSSL X509_V_ERR_* codes -> mxray pkix_error.
VERIFY = {
    0: None,
    10: "expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    18: "self_signed",  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    62: "name_mismatch",  # X509_V_ERR_HOSTNAME_MISMATCH
}
# Where mxray's PKIX is stricter than OpenSSL at security level 0 (s_client -cipher
# ...@SECLEVEL=0 verifies an RSA-1024 leaf): a weak key is mxray's finding, not OpenSSL's.
STRICTER = {"weak_key", "weak_signature"}


@pytest.fixture(scope="session")
def probes(scan_ad):
    seen = {}
    for p in scan_ad["smtp_probe"]:
        seen.setdefault((p["ip"], p["sni"]), p)
    return seen


def test_probed_every_listener(probes):
    want = ({MX_GOOD, MX_PLAIN, MX_SELF, MX_EXPIRED, MX_WRONG, MX_TLS10, MX_TLS11, MX_RSA1024}
            | ({MX_EXIM, MX_EXIM_LEGACY} if EXIM else set()))
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
            pkix_ok = (s.verify_code == 0 and p["pkix_error"] in STRICTER) or (
                s.verify_code in VERIFY
                and VERIFY[s.verify_code] == p["pkix_error"]
                and (s.verify_code == 0) == bool(p["pkix_valid"]))
            ok = (p["result"] == "starttls_ok"
                  and pkix_ok
                  and s.chain_sha256 == p["chain_sha256"] and s.chain_sha256
                  # OpenSSL says TLSv1 for TLS 1.0.
                  and s.protocol.replace("TLSv1", "TLSv1.0", 1).replace("TLSv1.0.", "TLSv1.")
                  == p["tls_version"]
                  and s.cipher == p["cipher"]
                  and s.kx_group == (p["kx_group"] or ""))
        if not ok:
            bad.append(f"{ip} {name}: openssl missing_starttls={s.starttls_missing} "
                       f"verify={s.verify_code} protocol={s.protocol}; mxray result={p['result']} "
                       f"pkix_valid={p['pkix_valid']} pkix_error={p['pkix_error']} "
                       f"tls_version={p['tls_version']} engine={p['tls_engine']} "
                       f"cipher openssl={s.cipher} mxray={p['cipher']} "
                       f"kx openssl={s.kx_group} mxray={p['kx_group']} "
                       f"same chain={s.chain_sha256 == p['chain_sha256']}")
    assert not bad, "\n".join(bad)
