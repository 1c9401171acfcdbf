"""The submission ports against real Postfix services (master.cf `submission`, 587,
STARTTLS; `smtps`, 465, implicit TLS with smtpd_tls_wrappermode): one smtp_probe per
(IP, port, SNI), the same capture as port 25, cross-checked with openssl s_client; and
domain verdicts that come from port 25 only."""

import pytest

from clients import s_client
from conftest import run_scan
from lab import MX_GOOD, UNBOUND_IP
from test_legacy import mxray_smtp


@pytest.fixture(scope="module")
def ports(lab):
    probes, err = mxray_smtp(lab, "mx.good.test", "--smtp-port", "25,587,465")
    by_port = {p["port"]: p for p in probes}
    assert sorted(by_port) == [25, 465, 587] and len(probes) == 3, err
    return by_port


def test_every_port_completes_tls(ports):
    for port, p in ports.items():
        assert p["result"] == "starttls_ok", (port, p["error_detail"])
        assert p["error_class"] is None, port
        assert p["tls_engine"] == "rustls", port
        assert p["pkix_valid"] is True, port
        assert p["banner"] == "220 mx.good.test ESMTP mxray-interop", port


def test_587_is_starttls_and_465_implicit_tls(ports):
    assert ports[587]["starttls_advertised"] and ports[587]["starttls_reply_code"] == 220
    implicit = ports[465]
    # TLS before the greeting: no STARTTLS offer or command, the EHLO is inside TLS.
    assert not implicit["starttls_advertised"] and implicit["starttls_reply_code"] is None
    assert implicit["ehlo_keywords"] == [] and implicit["post_tls_ehlo_keywords"]
    assert implicit["transcript"].startswith("C: [TLS handshake, rustls]")
    assert "STARTTLS" not in [line[3:] for line in implicit["transcript"].splitlines()
                              if line.startswith("C: ")]
    assert implicit["stripping_signals"] == []


def test_dane_only_on_port_25(ports):
    # mx.good.test has a secure DANE-EE TLSA at _25._tcp; it says nothing about 465/587.
    assert ports[25]["dane"] == "valid"
    assert ports[587]["dane"] == "none" and ports[465]["dane"] == "none"


@pytest.mark.parametrize("port,starttls", [(587, True), (465, False)])
def test_s_client_agrees(lab, ports, port, starttls):
    s = s_client(MX_GOOD, "mx.good.test", lab.ca.pem, port=port, starttls=starttls)
    p = ports[port]
    assert s.verify_code == 0, s.text
    assert s.protocol == p["tls_version"] and s.cipher == p["cipher"], s.text
    assert s.kx_group == p["kx_group"], s.text
    assert s.chain_sha256 == p["chain_sha256"], s.text


def test_scan_verdicts_come_from_port_25(lab, workdir):
    recs = run_scan(lab, workdir, "ports", ["--resolver", f"{UNBOUND_IP}:53", "--dnssec", "ad",
                                            "--smtp-port", "25,587,465"],
                    domains=["good.test", "tls10.test"])
    probes = {(p["sni"], p["port"]): p for p in recs["smtp_probe"]}
    assert {port for (sni, port) in probes if sni == "mx.good.test"} == {25, 465, 587}
    # The legacy listener has no submission services: refused there, and that changes no
    # verdict (port 25 decides).
    assert probes[("mx.tls10.test", 587)]["error_class"] == "connect_refused"
    assert probes[("mx.tls10.test", 465)]["error_class"] == "connect_refused"
    good, tls10 = recs["domain"]["good.test"], recs["domain"]["tls10.test"]
    assert (good["starttls"], good["pkix"], good["dane"]) == ("all", "all", "valid")
    assert (tls10["starttls"], tls10["pkix"], tls10["tls_legacy"]) == ("all", "all", True)
