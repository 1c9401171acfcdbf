"""The interop lab: real NSD, Unbound, Postfix and nginx with the zones, certificates and
policies of the test domains. Only for use inside a private network namespace (see
scripts/checks.d/interop): every address is on 127.0.0.0/8 and the standard ports are used.

`Lab.start(dir)` signs the zones, writes every configuration, starts the daemons in the
foreground as children and waits until each answers; `Lab.stop()` kills exactly those
children (also when start fails half-way)."""

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pki import NOW, DAY, TestCA

NSD_IP = "127.0.0.53"
UNBOUND_IP = "127.0.0.54"

# Postfix smtpd listeners, one per TLS behaviour (all on port 25).
MX_GOOD = "127.0.1.10"  # STARTTLS, certificate from the test CA (chain includes the CA)
MX_PLAIN = "127.0.1.11"  # no STARTTLS (smtpd_tls_security_level = none)
MX_SELF = "127.0.1.12"  # self-signed certificate
MX_EXPIRED = "127.0.1.13"  # test-CA certificate that expired 30 days ago
MX_WRONG = "127.0.1.14"  # test-CA certificate for another name
# What rustls cannot talk to (mxray retries them with its OpenSSL engine): only TLS 1.0, only
# TLS 1.1 (both with OpenSSL's `@SECLEVEL=0`, without which OpenSSL 3 refuses TLS < 1.2), and
# TLS 1.2 with a 1024-bit RSA key (ring verifies no RSA signature under 2048 bits).
MX_TLS10 = "127.0.1.15"
MX_TLS11 = "127.0.1.16"
MX_RSA1024 = "127.0.1.17"
# The legacy listeners' OpenSSL cipher list: everything, at security level 0.
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
# MX_GOOD also runs the submission services of master.cf: `submission` (587, STARTTLS) and
# `smtps` (465, implicit TLS, smtpd_tls_wrappermode).
SUBMISSION_PORTS = (587, 465)
# Exim (a second MTA, GnuTLS instead of Postfix's OpenSSL), when scripts/checks.d/interop
# could extract it (MXRAY_INTEROP_EXIM = the directory of the extracted packages).
MX_EXIM = "127.0.1.20"
# The same Exim on a second address offering only TLS 1.0 (GnuTLS priority string).
MX_EXIM_LEGACY = "127.0.1.21"
EXIM_LEGACY_PRIORITY = "NORMAL:-VERS-ALL:+VERS-TLS1.0"

# nginx, MTA-STS policies over HTTPS on 443.
WEB_GOOD = "127.0.2.10"  # test-CA certificate for every mta-sts.<domain> it serves
WEB_SELF = "127.0.2.11"  # self-signed certificate

# Names on the good certificate: every MX host that points at MX_GOOD.
GOOD_MX_NAMES = [
    "mx.good.test", "mx.dane-ta.test", "mx.tlsa-mismatch.test", "mx.insecure.test",
    "mx.bogus.test", "mx.sts.test", "implicit.test", "mx.cname-mx.test", "real.cname-mx.test",
    "mx.shared.test", "mx.tlsa-servfail.test",
]
# The TLSA owner of mx.tlsa-servfail.test is a zone of its own, delegated from `test.` (no DS)
# to NSD, which is configured for it without any zone data: NSD answers SERVFAIL there, so
# Unbound's TLSA lookup fails (a failed lookup, not a bad signature: that is bogus.test)
# while the host's A record stays secure. RFC 7672 §2.2: the sender must not deliver.
TLSA_SERVFAIL_ZONE = "_25._tcp.mx.tlsa-servfail.test."

# MTA-STS policy hosts served by nginx on WEB_GOOD: domain -> (kind, body).
STS_ENFORCE_GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmax_age: 86400\r\n"
STS_POLICIES = {
    "good.test": ("ok", STS_ENFORCE_GOOD),
    "sts-testing.test": ("ok", "version: STSv1\nmode: testing\nmx: mx.sts.test\nmax_age: 86400\n"),
    "sts-mx-outside.test": ("ok", "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\n"
                                  "max_age: 86400\n"),
    "sts-invalid.test": ("ok", "version: STSv1\nmode: enforce\nmax_age: 86400\n"),  # no mx
    "sts-mode-none.test": ("ok", "version: STSv1\nmode: none\nmax_age: 86400\n"),
    # text/plain; charset=utf-8 (parameters are allowed: RFC 8461 §3.3 names the media type).
    "sts-charset.test": ("charset", STS_ENFORCE_GOOD.replace("mx.good.test", "mx.sts.test")),
    "sts-404.test": ("404", ""),
    "sts-redirect.test": ("301", ""),
    "sts-content-type.test": ("html", STS_ENFORCE_GOOD.replace("mx.good.test", "mx.sts.test")),
}
STS_SELF_SIGNED = "sts-self-signed.test"  # served on WEB_SELF with a self-signed certificate
STS_TXT = '"v=STSv1; id=20261129T000000"'

SOA = "@ 3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300"

DAEMONS = {
    "nsd": "nsd", "unbound": "unbound", "ldns-keygen": "ldnsutils", "ldns-signzone": "ldnsutils",
    "postfix": "postfix", "posttls-finger": "postfix", "nginx": "nginx", "openssl": "openssl",
}


def find_binary(name: str):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    return None


def missing_binaries():
    return [f"{b} (apt package {p})" for b, p in DAEMONS.items() if find_binary(b) is None]


def _run(cmd, cwd=None, **kw) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({r.returncode}): {r.stdout}\n{r.stderr}")
    return r.stdout.strip()


def _keygen(d: Path, zone: str, ksk: bool) -> str:
    return _run(["ldns-keygen", "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [zone], cwd=d)


def _sign(d: Path, zonefile: str, origin: str, keys) -> str:
    _run(["ldns-signzone", "-o", origin, zonefile, *keys], cwd=d)
    return f"{zonefile}.signed"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path


@dataclass
class Lab:
    dir: Path
    ca: TestCA = None
    anchor_ds: Path = None
    procs: list = field(default_factory=list)
    # Expected TLSA data, for the tests' own sanity checks.
    good_spki: str = ""
    self_spki: str = ""

    # ------------------------------------------------------------------ certificates
    def make_pki(self):
        d = self.dir / "pki"
        d.mkdir()
        d.chmod(0o755)
        self.ca = ca = TestCA(d)
        self.good = ca.issue("mx-good", GOOD_MX_NAMES)
        self.self_signed = ca.issue("mx-self", ["mx.self-signed.test"], self_signed=True)
        self.expired = ca.issue("mx-expired", ["mx.expired.test"],
                                not_before=NOW - 120 * DAY, not_after=NOW - 30 * DAY)
        self.wrong = ca.issue("mx-wrong", ["other-name.test"])
        self.web_good = ca.issue("web-good", [f"mta-sts.{d}" for d in STS_POLICIES])
        self.web_self = ca.issue("web-self", [f"mta-sts.{STS_SELF_SIGNED}"], self_signed=True)
        self.exim = ca.issue("mx-exim", ["mx.exim.test"])
        # RSA 2048, the key of the long tail of old servers (TLS < 1.2 signs with MD5+SHA-1).
        self.exim_legacy = ca.issue("mx-exim-legacy", ["mx.exim-legacy.test"], rsa_bits=2048)
        self.tls10 = ca.issue("mx-tls10", ["mx.tls10.test"], rsa_bits=2048)
        self.tls11 = ca.issue("mx-tls11", ["mx.tls11.test"], rsa_bits=2048)
        self.rsa1024 = ca.issue("mx-rsa1024", ["mx.rsa1024.test"], rsa_bits=1024)
        self.other = ca.issue("unused", ["unused.test"])  # TLSA data that matches nothing
        self.good_spki = self.good.spki_sha256()
        self.self_spki = self.self_signed.spki_sha256()

    # ------------------------------------------------------------------ DNS
    def zones(self):
        good_tlsa = self.good.spki_sha256()
        return {
            "insecure": (
                f"$ORIGIN insecure.test.\n$TTL 300\n{SOA}\n@ IN NS ns.insecure.test.\n"
                f"ns IN A {NSD_IP}\n@ IN MX 10 mx.insecure.test.\nmx IN A {MX_GOOD}\n"
                f"_25._tcp.mx IN TLSA 3 1 1 {good_tlsa}\n"
                # An unsigned MX RRset pointing at the signed DANE host mx.shared.test.
                f"shared IN MX 10 mx.shared.test.\n"
            ),
            "bogus": (
                f"$ORIGIN bogus.test.\n$TTL 300\n{SOA}\n@ IN NS ns.bogus.test.\n"
                f"ns IN A {NSD_IP}\n@ IN MX 10 mx.bogus.test.\nmx IN A {MX_GOOD}\n"
                f"_25._tcp.mx IN TLSA 3 1 1 {good_tlsa}\n"
            ),
            "parent": lambda ds: "\n".join([
                "$ORIGIN test.", "$TTL 300", SOA, "@ IN NS ns.test.", f"ns IN A {NSD_IP}",
                # DANE-EE + MTA-STS enforce + TLS-RPT: everything right.
                "good IN MX 10 mx.good.test.", f"mx.good IN A {MX_GOOD}",
                f"_25._tcp.mx.good IN TLSA 3 1 1 {good_tlsa}",
                f"_mta-sts.good IN TXT {STS_TXT}",
                '_smtp._tls.good IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@good.test"',
                # DANE-TA: 2 0 1 of the test CA, which the server sends in its chain.
                "dane-ta IN MX 10 mx.dane-ta.test.", f"mx.dane-ta IN A {MX_GOOD}",
                f"_25._tcp.mx.dane-ta IN TLSA 2 0 1 {self.ca.cert_sha256()}",
                # Secure TLSA that matches nothing the server presents.
                "tlsa-mismatch IN MX 10 mx.tlsa-mismatch.test.",
                f"mx.tlsa-mismatch IN A {MX_GOOD}",
                f"_25._tcp.mx.tlsa-mismatch IN TLSA 3 1 1 {self.other.spki_sha256()}",
                # DANE-EE on a self-signed certificate: valid DANE, no PKIX (RFC 7672 §3.1.1).
                "dane-ee-self IN MX 10 mx.dane-ee-self.test.",
                f"mx.dane-ee-self IN A {MX_SELF}",
                f"_25._tcp.mx.dane-ee-self IN TLSA 3 1 1 {self.self_signed.spki_sha256()}",
                # Secure TLSA on a host without STARTTLS.
                "dane-no-starttls IN MX 10 mx.dane-no-starttls.test.",
                f"mx.dane-no-starttls IN A {MX_PLAIN}",
                f"_25._tcp.mx.dane-no-starttls IN TLSA 3 1 1 {good_tlsa}",
                # One DANE-EE host used as MX by this signed domain and by the unsigned
                # shared.insecure.test: the same probe, judged per domain (issue 14).
                "shared IN MX 10 mx.shared.test.", f"mx.shared IN A {MX_GOOD}",
                f"_25._tcp.mx.shared IN TLSA 3 1 1 {good_tlsa}",
                # Secure MX and A, TLSA lookup answered SERVFAIL (see TLSA_SERVFAIL_ZONE).
                "tlsa-servfail IN MX 10 mx.tlsa-servfail.test.",
                f"mx.tlsa-servfail IN A {MX_GOOD}",
                f"{TLSA_SERVFAIL_ZONE} IN NS ns.test.",
                # Delegations: unsigned child (no DS), signed child with broken signatures.
                "insecure IN NS ns.insecure.test.", f"ns.insecure IN A {NSD_IP}",
                "bogus IN NS ns.bogus.test.", f"ns.bogus IN A {NSD_IP}", ds,
                # TLS behaviours of the MX hosts.
                "no-starttls IN MX 10 mx.no-starttls.test.", f"mx.no-starttls IN A {MX_PLAIN}",
                "self-signed IN MX 10 mx.self-signed.test.", f"mx.self-signed IN A {MX_SELF}",
                "expired IN MX 10 mx.expired.test.", f"mx.expired IN A {MX_EXPIRED}",
                "wrong-name IN MX 10 mx.wrong-name.test.", f"mx.wrong-name IN A {MX_WRONG}",
                # MTA-STS classes; their MX host is mx.sts.test (good certificate, no TLSA).
                f"mx.sts IN A {MX_GOOD}",
                *[line for dom in STS_POLICIES if dom != "good.test" for line in (
                    f"{dom[:-5]} IN MX 10 mx.sts.test.",
                    f"_mta-sts.{dom[:-5]} IN TXT {STS_TXT}",
                    f"mta-sts.{dom[:-5]} IN A {WEB_GOOD}",
                )],
                f"mta-sts.good IN A {WEB_GOOD}",
                f"{STS_SELF_SIGNED[:-5]} IN MX 10 mx.sts.test.",
                f"_mta-sts.{STS_SELF_SIGNED[:-5]} IN TXT {STS_TXT}",
                f"mta-sts.{STS_SELF_SIGNED[:-5]} IN A {WEB_SELF}",
                # The Exim listener: DANE-EE + PKIX.
                "exim IN MX 10 mx.exim.test.", f"mx.exim IN A {MX_EXIM}",
                f"_25._tcp.mx.exim IN TLSA 3 1 1 {self.exim.spki_sha256()}",
                "exim-legacy IN MX 10 mx.exim-legacy.test.",
                f"mx.exim-legacy IN A {MX_EXIM_LEGACY}",
                # Legacy TLS: STARTTLS offered, only what rustls cannot speak.
                "tls10 IN MX 10 mx.tls10.test.", f"mx.tls10 IN A {MX_TLS10}",
                "tls11 IN MX 10 mx.tls11.test.", f"mx.tls11 IN A {MX_TLS11}",
                "rsa1024 IN MX 10 mx.rsa1024.test.", f"mx.rsa1024 IN A {MX_RSA1024}",
                # Shapes of the MX RRset.
                "null-mx IN MX 0 .",
                f"implicit IN A {MX_GOOD}",
                "cname-mx IN MX 10 mx.cname-mx.test.",
                "mx.cname-mx IN CNAME real.cname-mx.test.",
                f"real.cname-mx IN A {MX_GOOD}",
                "",
            ]),
        }

    def make_zones(self):
        d = self.dir / "dns"
        d.mkdir()
        z = self.zones()
        (d / "insecure.test.zone").write_text(z["insecure"])
        (d / "bogus.test.zone").write_text(z["bogus"])
        bk = _keygen(d, "bogus.test.", True)
        bz = _keygen(d, "bogus.test.", False)
        bsigned = _sign(d, "bogus.test.zone", "bogus.test.", [bk, bz])
        text = (d / bsigned).read_text()
        # Change the signed TLSA data: its RRSIG no longer verifies (MX and A stay secure).
        tlsa = self.good.spki_sha256()
        broken = text.replace(tlsa, tlsa[:-8] + "deadbeef").replace(tlsa.upper(),
                                                                    tlsa.upper()[:-8] + "DEADBEEF")
        assert broken != text, "bogus zone edit did not apply"
        (d / bsigned).write_text(broken)
        ds = (d / f"{bk}.ds").read_text().strip()
        (d / "test.zone").write_text(z["parent"](ds))
        tk = _keygen(d, "test.", True)
        tz = _keygen(d, "test.", False)
        tsigned = _sign(d, "test.zone", "test.", [tk, tz])
        self.anchor_ds = d / "test.anchor.ds"
        shutil.copy(d / f"{tk}.ds", self.anchor_ds)
        (d / "nsd.conf").write_text(
            f'server:\n  ip-address: {NSD_IP}\n  port: 53\n  zonesdir: "{d}"\n'
            f'  pidfile: "{d}/nsd.pid"\n  database: ""\n  zonelistfile: "{d}/zone.list"\n'
            f'  xfrdfile: "{d}/xfrd.state"\n  xfrdir: "{d}"\n  username: ""\n  chroot: ""\n'
            f'  logfile: "{d}/nsd.log"\n  server-count: 1\n  verbosity: 1\n  do-ip6: no\n'
            f'remote-control:\n  control-enable: no\n'
            f'zone:\n  name: "test."\n  zonefile: "{tsigned}"\n'
            f'zone:\n  name: "insecure.test."\n  zonefile: "insecure.test.zone"\n'
            f'zone:\n  name: "bogus.test."\n  zonefile: "{bsigned}"\n'
            # Deliberately no such file: NSD serves the zone as SERVFAIL.
            f'zone:\n  name: "{TLSA_SERVFAIL_ZONE}"\n  zonefile: "tlsa-servfail.absent"\n'
        )
        (d / "unbound.conf").write_text(
            f'server:\n  interface: {UNBOUND_IP}\n  port: 53\n  do-daemonize: no\n'
            f'  username: ""\n  chroot: ""\n  directory: "{d}"\n  pidfile: "{d}/unbound.pid"\n'
            f'  use-syslog: no\n  logfile: "{d}/unbound.log"\n  verbosity: 1\n'
            f'  num-threads: 1\n  do-ip6: no\n  so-reuseport: no\n'
            f'  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n'
            f'  module-config: "validator iterator"\n  trust-anchor-file: "{self.anchor_ds}"\n'
            f'  val-log-level: 1\n  qname-minimisation: no\n  outgoing-interface: 127.0.0.1\n'
            f'  local-zone: "test." nodefault\n'
            f'remote-control:\n  control-enable: no\n'
            f'stub-zone:\n  name: "test."\n  stub-addr: {NSD_IP}@53\n'
        )
        self.spawn("nsd", ["nsd", "-d", "-c", str(d / "nsd.conf")], d / "nsd.log")
        self.wait_dns(NSD_IP, "nsd")
        self.spawn("unbound", ["unbound", "-d", "-c", str(d / "unbound.conf")],
                   d / "unbound.log")
        self.wait_dns(UNBOUND_IP, "unbound")

    # ------------------------------------------------------------------ Postfix
    def make_postfix(self):
        d = self.dir / "postfix"
        for sub in ("etc", "queue", "data"):
            (d / sub).mkdir(parents=True)
        etc = d / "etc"
        listeners = [
            (MX_GOOD, "mx.good.test", ["-o", "smtpd_tls_security_level=may",
                                       "-o", f"smtpd_tls_chain_files={self.good.chain_pem}"]),
            (MX_PLAIN, "mx.no-starttls.test", ["-o", "smtpd_tls_security_level=none"]),
            (MX_SELF, "mx.self-signed.test", [
                "-o", "smtpd_tls_security_level=may",
                "-o", f"smtpd_tls_chain_files={self.self_signed.chain_pem}"]),
            (MX_EXPIRED, "mx.expired.test", [
                "-o", "smtpd_tls_security_level=may",
                "-o", f"smtpd_tls_chain_files={self.expired.chain_pem}"]),
            (MX_WRONG, "mx.wrong-name.test", [
                "-o", "smtpd_tls_security_level=may",
                "-o", f"smtpd_tls_chain_files={self.wrong.chain_pem}"]),
            (MX_TLS10, "mx.tls10.test", self._legacy_opts(self.tls10, "TLSv1", "TLSv1")),
            (MX_TLS11, "mx.tls11.test", self._legacy_opts(self.tls11, "TLSv1.1", "TLSv1.1")),
            (MX_RSA1024, "mx.rsa1024.test",
             self._legacy_opts(self.rsa1024, "TLSv1.2", "TLSv1.2")),
        ]
        self.postfix_banners = {ip: f"{host} ESMTP mxray-interop" for ip, host, _ in listeners}
        (etc / "main.cf").write_text("\n".join([
            "compatibility_level = 3.6",
            f"queue_directory = {d / 'queue'}",
            f"data_directory = {d / 'data'}",
            "myhostname = mx.good.test",
            "mydomain = interop.test",
            "myorigin = $myhostname",
            "mydestination =",
            "relayhost =",
            "relay_domains =",
            "mynetworks = 127.0.0.0/8",
            # master.cf binds each listener to its own address.
            "inet_interfaces = all",
            "inet_protocols = ipv4",
            "smtpd_relay_restrictions = reject",
            "smtpd_recipient_restrictions = reject",
            "smtpd_banner = $myhostname ESMTP mxray-interop",
            "smtpd_peername_lookup = no",
            "smtpd_tls_security_level = may",
            "smtpd_tls_loglevel = 1",
            "biff = no",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "",
        ]))
        master = [
            "postlog   unix-dgram n  -       n       -       1       postlogd",
            "tlsmgr    unix  -       -       n       1000?   1       tlsmgr",
            "anvil     unix  -       -       n       -       1       anvil",
            "proxymap  unix  -       -       n       -       -       proxymap",
        ]
        for ip, host, opts in listeners:
            # syslog_name tells the listeners apart in postfix.log (sessions are counted there).
            master.append(f"{ip}:25 inet n - n - - smtpd -o myhostname={host} "
                          f"-o syslog_name=postfix-{ip} " + " ".join(opts))
        good = f"-o myhostname=mx.good.test -o smtpd_tls_chain_files={self.good.chain_pem}"
        master.append(f"{MX_GOOD}:submission inet n - n - - smtpd {good} "
                      f"-o syslog_name=postfix-submission -o smtpd_tls_security_level=may")
        master.append(f"{MX_GOOD}:smtps inet n - n - - smtpd {good} "
                      f"-o syslog_name=postfix-smtps -o smtpd_tls_wrappermode=yes "
                      f"-o smtpd_tls_security_level=encrypt")
        (etc / "master.cf").write_text("\n".join(master) + "\n")
        env = dict(os.environ, MAIL_CONFIG=str(etc))
        # Creates the queue directories with their owners (postfix:postdrop), as `postfix start`.
        _run(["postfix", "-c", str(etc), "set-permissions"], env=env)
        _run(["postfix", "-c", str(etc), "check"], env=env)
        # Daemon logs to a file (through postlogd); set only now: the postfix command itself
        # cannot log there before master runs.
        with open(etc / "main.cf", "a") as f:
            f.write(f"maillog_file_prefixes = {d}\nmaillog_file = {d / 'postfix.log'}\n")
        self.spawn("postfix", ["/usr/lib/postfix/sbin/master", "-c", str(etc), "-d"],
                   d / "postfix.log", env=env)
        for ip, _, _ in listeners:
            self.wait_tcp(ip, 25, "postfix")
        for port in SUBMISSION_PORTS:
            self.wait_tcp(MX_GOOD, port, "postfix")
        self.postfix_etc = etc
        self.postfix_log = d / "postfix.log"

    @staticmethod
    def _legacy_opts(issued, low, high):
        """smtpd overrides for a listener that speaks only TLS versions low..high with every
        cipher at OpenSSL security level 0 (Postfix 3.6+ protocol-range syntax)."""
        return ["-o", "smtpd_tls_security_level=may",
                "-o", f"smtpd_tls_chain_files={issued.chain_pem}",
                "-o", f"smtpd_tls_protocols=>={low},<={high}",
                "-o", f"smtpd_tls_mandatory_protocols=>={low},<={high}",
                "-o", f"tls_medium_cipherlist={LEGACY_CIPHERS}"]

    def sessions(self, ip_or_service: str) -> int:
        """Connections Postfix logged so far for one listener (`postfix-<ip>`) or service
        (`postfix-submission`, `postfix-smtps`)."""
        if not self.postfix_log.exists():
            return 0
        tag = f"postfix-{ip_or_service}/smtpd["
        return sum(1 for line in self.postfix_log.read_text(errors="replace").splitlines()
                   if tag in line and ": connect from " in line)

    # ------------------------------------------------------------------ Exim
    def make_exim(self, root: Path):
        """Exim from the extracted Debian packages (it conflicts with Postfix as a package).
        Its compiled-in user Debian-exim exists only in this mount namespace's /etc/passwd
        (bind-mounted by scripts/checks.d/interop)."""
        d = self.dir / "exim"
        (d / "spool").mkdir(parents=True)
        (d / "log").mkdir()
        d.chmod(0o755)
        for sub in ("spool", "log"):
            shutil.chown(d / sub, "Debian-exim", "Debian-exim")
        (d / "exim.conf").write_text(
            f"primary_hostname = mx.exim.test\nspool_directory = {d}/spool\n"
            f"log_file_path = {d}/log/%slog\npid_file_path = {d}/exim.pid\n"
            f"local_interfaces = {MX_EXIM} : {MX_EXIM_LEGACY}\ndaemon_smtp_ports = 25\n"
            f"keep_environment = LD_LIBRARY_PATH\n"
            f"smtp_banner = mx.exim.test ESMTP mxray-interop exim\n"
            f"tls_advertise_hosts = *\n"
            f"tls_certificate = {self._exim_by_address('fullchain_pem')}\n"
            f"tls_privatekey = {self._exim_by_address('key_pem')}\n"
            # GnuTLS priority per listening address: only TLS 1.0 on the legacy one.
            f"tls_require_ciphers = ${{if eq{{$received_ip_address}}{{{MX_EXIM_LEGACY}}}"
            f"{{{EXIM_LEGACY_PRIORITY}}}{{NORMAL}}}}\n"
            f"acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  deny\n"
        )
        env = dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib/x86_64-linux-gnu"))
        self.spawn("exim", [str(root / "usr/sbin/exim4"), "-C", str(d / "exim.conf"), "-bdf"],
                   d / "log" / "mainlog", env=env)
        self.wait_tcp(MX_EXIM, 25, "exim")
        self.wait_tcp(MX_EXIM_LEGACY, 25, "exim")

    def _exim_by_address(self, attr):
        """An Exim expansion: the legacy address's file, else the normal one."""
        legacy, normal = getattr(self.exim_legacy, attr), getattr(self.exim, attr)
        return f"${{if eq{{$received_ip_address}}{{{MX_EXIM_LEGACY}}}{{{legacy}}}{{{normal}}}}}"

    # ------------------------------------------------------------------ nginx
    def make_nginx(self):
        d = self.dir / "nginx"
        www = d / "www"
        www.mkdir(parents=True)
        d.chmod(0o755)
        www.chmod(0o755)
        servers = []
        for dom, (kind, body) in STS_POLICIES.items():
            (www / f"{dom}.txt").write_text(body)
            (www / f"{dom}.txt").chmod(0o644)
            if kind == "ok":
                loc = f"default_type text/plain; alias {www}/{dom}.txt;"
            elif kind == "charset":
                loc = f"default_type text/plain; charset utf-8; alias {www}/{dom}.txt;"
            elif kind == "html":
                loc = f"types {{ }} default_type text/html; alias {www}/{dom}.txt;"
            elif kind == "404":
                loc = "return 404;"
            else:
                loc = "return 301 https://mta-sts.good.test/.well-known/mta-sts.txt;"
            servers.append(self._nginx_server(WEB_GOOD, f"mta-sts.{dom}", self.web_good, loc))
        (www / "self.txt").write_text(STS_ENFORCE_GOOD.replace("mx.good.test", "mx.sts.test"))
        (www / "self.txt").chmod(0o644)
        servers.append(self._nginx_server(
            WEB_SELF, f"mta-sts.{STS_SELF_SIGNED}", self.web_self,
            f"default_type text/plain; alias {www}/self.txt;"))
        temp = "".join(f"  {t}_temp_path {d}/{t};\n"
                       for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (d / "nginx.conf").write_text(
            f"worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
            f"events {{ worker_connections 64; }}\n"
            f"http {{\n  access_log {d}/access.log;\n{temp}" + "".join(servers) + "}\n"
        )
        self.spawn("nginx", ["nginx", "-p", str(d), "-c", str(d / "nginx.conf"),
                             "-g", "daemon off;"], d / "error.log")
        self.wait_tcp(WEB_GOOD, 443, "nginx")
        self.wait_tcp(WEB_SELF, 443, "nginx")

    @staticmethod
    def _nginx_server(ip, name, issued, location):
        return (
            f"  server {{\n    listen {ip}:443 ssl;\n    server_name {name};\n"
            f"    ssl_certificate {issued.fullchain_pem};\n"
            f"    ssl_certificate_key {issued.key_pem};\n"
            f"    location = /.well-known/mta-sts.txt {{ {location} }}\n"
            f"    location / {{ return 404; }}\n  }}\n"
        )

    # ------------------------------------------------------------------ processes
    def spawn(self, name, cmd, log: Path, env=None):
        out = open(self.dir / f"{name}.out", "wb")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
        out.close()
        self.procs.append(Proc(name, p, log))
        # scripts/checks.d/interop kills these process groups if pytest itself dies.
        pids = os.environ.get("MXRAY_INTEROP_TMP")
        if pids:
            with open(Path(pids) / "pids", "a") as f:
                f.write(f"{p.pid}\n")

    def _check_alive(self):
        for p in self.procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited early ({p.popen.returncode}):\n"
                                   + self.logs(p.name))

    def logs(self, name) -> str:
        text = ""
        for p in self.procs:
            if p.name == name:
                for f in (p.log, self.dir / f"{name}.out"):
                    if f.exists():
                        text += f"--- {f}\n" + f.read_text(errors="replace")[-4000:]
        return text

    def wait_dns(self, ip, name):
        # An SOA query for test.
        q = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4]) + b"test" + bytes([0, 0, 6, 0, 1])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    s.sendto(q, (ip, 53))
                    data, _ = s.recvfrom(1500)
                    if data[:2] == b"\x12\x34":
                        return
                except OSError:
                    time.sleep(0.05)
        finally:
            s.close()
        raise RuntimeError(f"{name} did not answer on {ip}:53\n" + self.logs(name))

    def wait_tcp(self, ip, port, name):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                socket.create_connection((ip, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not listen on {ip}:{port}\n" + self.logs(name))

    def stop(self):
        """Stops exactly the processes this lab started (their process groups: Postfix's
        master takes its smtpd children down with it, nginx its worker)."""
        for p in reversed(self.procs):
            if p.popen.poll() is None:
                try:
                    os.killpg(p.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.popen.wait(timeout=5)
        self.procs.clear()

    @classmethod
    def start(cls, directory: Path) -> "Lab":
        lab = cls(directory)
        try:
            lab.make_pki()
            lab.make_zones()
            lab.make_postfix()
            lab.make_nginx()
            exim = os.environ.get("MXRAY_INTEROP_EXIM")
            if exim:
                lab.make_exim(Path(exim))
        except BaseException:
            lab.stop()
            raise
        return lab
