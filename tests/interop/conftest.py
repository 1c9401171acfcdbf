"""Fixtures of the interoperability suite: the lab (NSD, Unbound, Postfix, nginx) and mxray's
scans of it. Run through scripts/checks.d/interop, which provides the private network
namespace; anywhere else the suite refuses to start servers on ports 25/53/443."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab import NSD_IP, UNBOUND_IP, Lab, missing_binaries  # noqa: E402

# Every domain of the lab; the expected postures are in test_scan.py.
DOMAINS = [
    "good.test", "dane-ta.test", "tlsa-mismatch.test", "dane-ee-self.test",
    "dane-no-starttls.test", "insecure.test", "bogus.test", "no-starttls.test",
    "self-signed.test", "expired.test", "wrong-name.test", "sts-testing.test",
    "sts-mx-outside.test", "sts-invalid.test", "sts-mode-none.test", "sts-charset.test",
    "sts-404.test", "sts-redirect.test", "sts-content-type.test", "sts-self-signed.test",
    "null-mx.test", "implicit.test", "cname-mx.test", "nonexistent.test",
    "tls10.test", "tls11.test", "rsa1024.test",
    # Issue 14: one DANE host behind a signed and an unsigned MX RRset; a failed TLSA lookup.
    "shared.test", "shared.insecure.test", "tlsa-servfail.test",
]
# The Exim listener, when scripts/checks.d/interop could extract Exim.
EXIM = bool(os.environ.get("MXRAY_INTEROP_EXIM"))
if EXIM:
    DOMAINS += ["exim.test", "exim-legacy.test"]


def environment_problem():
    """Why the suite cannot run here, or None."""
    if os.environ.get("MXRAY_INTEROP_NETNS") != "1":
        return "not inside the suite's network namespace: run scripts/checks.d/interop"
    # /proc/net/dev lists the interfaces of the reader's network namespace.
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    interfaces = sorted(line.split(":")[0].strip() for line in lines)
    if interfaces != ["lo"]:
        # Safety: the daemons listen on the standard ports and the clients use
        # /etc/resolv.conf; only a namespace with nothing but loopback keeps that private.
        return f"network interfaces {interfaces}: not a private network namespace"
    if UNBOUND_IP not in Path("/etc/resolv.conf").read_text():
        return f"/etc/resolv.conf does not point at {UNBOUND_IP}"
    missing = missing_binaries()
    if missing:
        return "missing: " + ", ".join(missing)
    if not Path(os.environ.get("MXRAY_BIN", "")).is_file():
        return "MXRAY_BIN is not set to the mxray binary"
    return None


@pytest.fixture(scope="session")
def workdir() -> Path:
    d = Path(os.environ.get("MXRAY_INTEROP_TMP", "/nonexistent"))
    return d


@pytest.fixture(scope="session")
def lab(workdir):
    problem = environment_problem()
    if problem:
        if os.environ.get("MXRAY_REQUIRE_SERVERS") == "1":
            pytest.fail(f"MXRAY_REQUIRE_SERVERS=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    d = workdir / "lab"
    d.mkdir()
    d.chmod(0o755)
    lab = Lab.start(d)
    yield lab
    lab.stop()


def run_scan(lab: Lab, workdir: Path, name: str, extra, domains=None) -> dict:
    """`mxray scan` of every domain (or of `domains`); returns the records grouped by kind."""
    out = workdir / f"scan-{name}"
    out.mkdir()
    (out / "domains.txt").write_text("\n".join(domains or DOMAINS) + "\n")
    cmd = [
        os.environ["MXRAY_BIN"], "scan", str(out / "domains.txt"), "--quiet",
        "--ca-file", str(lab.ca.pem), "--allow-private", "--timeout", "5",
        "--ehlo-name", "scanner.interop.test", "--jsonl", "-", "--out", str(out / "parquet"),
        *extra,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=out)
    (out / "stderr.txt").write_text(r.stderr)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}:\n{r.stderr[-3000:]}"
    records = {"domain": {}, "smtp_probe": [], "dns_host": {}, "mta_sts_policy": {},
               "certificate": [], "scan": []}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        kind = rec["record"]
        if kind == "domain":
            records["domain"][rec["domain"]] = rec
        elif kind == "dns_host":
            records["dns_host"][rec["host"]] = rec
        elif kind == "mta_sts_policy":
            records["mta_sts_policy"][rec["domain"]] = rec
        else:
            records.setdefault(kind, []).append(rec)
    return records


@pytest.fixture(scope="session")
def scan_ad(lab, workdir):
    """mxray through Unbound, trusting its AD bit (the production setup)."""
    return run_scan(lab, workdir, "ad", ["--resolver", f"{UNBOUND_IP}:53", "--dnssec", "ad"])


@pytest.fixture(scope="session")
def scan_validate(lab, workdir):
    """mxray straight at the authoritative NSD, validating itself from the test. anchor."""
    return run_scan(lab, workdir, "validate", [
        "--resolver", f"{NSD_IP}:53", "--dnssec", "validate",
        "--trust-anchor", str(lab.anchor_ds),
    ])
