#!/usr/bin/env python3
"""Cross-check: run postfix-mta-sts-resolver's own STSResolver.resolve() on the cases of
crates/mtasts/tests/fixtures/cross_check.json and compare with its `resolver` column (mxray's
column is checked by `cargo test -p mxray-mtasts --test fetch cross_check`).

Network safety: the resolver's DNS client (aiodns) is replaced by a stub that returns the
case's TXT records, so no DNS query is ever sent and /etc/resolv.conf is never used; its HTTP
client (aiohttp) gets a connector whose resolver maps mta-sts.example.test, and only that
name, to 127.0.0.1 and the port of the HTTPS server this script starts. Proxy variables are
cleared. The test CA and certificate are made with the openssl CLI in a temporary directory.

Run:  .venv/bin/python scripts/mtasts-crosscheck.py   (after .venv/bin/pip install -r
scripts/requirements-mtasts.txt). Exit status 0 when every case matches the table.

With --netns (needs root, `unshare` and `ip`): the unmodified `mta-sts-query` command, and the
`mxray mta-sts` binary when MXRAY_BIN names it, run end to end inside a new network namespace
that has nothing but its own loopback interface, with a private mount namespace in which
/etc/resolv.conf is bind-mounted to `nameserver 127.0.0.1`. This script serves DNS on
127.0.0.1:53 and HTTPS on 127.0.0.1:443 inside that namespace; no packet can leave it.
"""

import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver

from postfix_mta_sts_resolver import resolver as res_mod

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "crates/mtasts/tests/fixtures/cross_check.json"
HOST = "mta-sts.example.test"
DOMAIN = "example.test"

for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(var, None)


def make_pki(d: Path):
    def run(*args):
        subprocess.run(args, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "2",
        "-subj", "/CN=mxray crosscheck CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", d / "leaf.key", "-out", d / "leaf.csr", "-subj", f"/CN={HOST}")
    (d / "ext.cnf").write_text(
        f"subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\n"
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n")
    run("openssl", "x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.pem", "-CAkey",
        d / "ca.key", "-CAcreateserial", "-out", d / "leaf.pem", "-days", "2",
        "-extfile", d / "ext.cnf")


CURRENT = {}
REQUESTS = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        REQUESTS.append((self.headers.get("Host"), self.path))
        case = CURRENT["case"]
        body = (case["body"] + "#" * case.get("pad", 0)).encode()
        self.send_response(case["status"])
        if case["content_type"]:
            self.send_header("Content-Type", case["content_type"])
        if case.get("location"):
            self.send_header("Location", case["location"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    """Clients that stop reading early (the 65 KiB case) are expected: no tracebacks."""

    def handle_error(self, request, client_address):
        pass


class FakeTxt:
    def __init__(self, text):
        self.text = text


class StubDns:
    """Replaces aiodns.DNSResolver: answers the case's TXT records, sends nothing."""

    def __init__(self, *args, **kwargs):
        pass

    async def query(self, name, qtype):
        assert name == "_mta-sts." + DOMAIN and qtype == "TXT", (name, qtype)
        return [FakeTxt(t) for t in CURRENT["case"]["txt"]]


class LoopbackResolver(AbstractResolver):
    def __init__(self, port):
        self.port = port

    async def resolve(self, host, port=0, family=0):
        if host != HOST:
            raise OSError(f"refusing to resolve {host!r}: only {HOST} maps to loopback")
        return [{"hostname": host, "host": "127.0.0.1", "port": self.port,
                 "family": 2, "proto": 0, "flags": 0}]

    async def close(self):
        pass


def main():
    cases = json.loads(CASES.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_pki(d)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(d / "leaf.pem", d / "leaf.key")
        server = QuietServer(("127.0.0.1", 0), Handler)
        server.socket = sctx.wrap_socket(server.socket, server_side=True)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()

        cctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
        real_session = aiohttp.ClientSession

        class Session(real_session):
            def __init__(self, *args, **kwargs):
                kwargs.pop("loop", None)
                kwargs["connector"] = aiohttp.TCPConnector(
                    resolver=LoopbackResolver(port), ssl=cctx)
                super().__init__(*args, **kwargs)

        res_mod.aiodns.DNSResolver = StubDns
        res_mod.aiohttp.ClientSession = Session

        async def run_all():
            r = res_mod.STSResolver(timeout=5, loop=asyncio.get_running_loop())
            out = []
            for case in cases:
                CURRENT["case"] = case
                REQUESTS.clear()
                verdict, _ = await r.resolve(DOMAIN)
                out.append((case, verdict.name, list(REQUESTS)))
            return out

        results = asyncio.run(run_all())
        server.shutdown()

    bad = 0
    differ = 0
    for case, got, reqs in results:
        want = case["resolver"]
        ok = got == want
        bad += not ok
        mx = case["mxray"]
        mx_class = ("VALID" if mx in ("enforce", "testing", "mode_none")
                    else "NONE" if mx in ("none", "txt_invalid") else "FETCH_ERROR")
        note = ""
        if mx_class != got or case.get("rfc"):
            differ += 1
            note = "  <- " + case.get("rfc", "(no note)")
        if any(r != (HOST, "/.well-known/mta-sts.txt") for r in reqs) or len(reqs) > 1:
            print(f"  unexpected requests for {case['name']}: {reqs}")
            bad += 1
        print(f"{'ok ' if ok else 'BAD'} {case['name']:<26} resolver={got:<12} mxray={mx}{note}")
    print(f"{len(results)} cases, {bad} mismatches with the table, {differ} documented differences")
    return 1 if bad else 0


# ---------------------------------------------------------------- netns end-to-end mode

import re
import socket
import struct


def dns_answer(query, case):
    """A minimal authoritative answer: TXT at _mta-sts.example.test, A at mta-sts.example.test."""
    if len(query) < 12:
        return None
    qid, _flags, qd = struct.unpack(">HHH", query[:6])
    if qd != 1:
        return None
    i, labels = 12, []
    while i < len(query) and query[i] != 0:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    i += 1
    if i + 4 > len(query):
        return None
    qtype, _qclass = struct.unpack(">HH", query[i:i + 4])
    question = query[12:i + 4]
    name = ".".join(labels)
    answers, rcode = [], 0
    if name == "_mta-sts." + DOMAIN:
        if qtype == 16:
            chunks = case.get("txt_chunks") or [[t[j:j + 255] for j in range(0, len(t), 255)] or [""]
                                                 for t in case["txt"]]
            for strings in chunks:
                rdata = b"".join(bytes([len(x.encode())]) + x.encode() for x in strings)
                answers.append((16, rdata))
    elif name == HOST:
        if qtype == 1:
            answers.append((1, socket.inet_aton("127.0.0.1")))
    elif name == "_smtp._tls." + DOMAIN or name == DOMAIN:
        pass  # NODATA
    else:
        rcode = 3  # NXDOMAIN
    out = struct.pack(">HHHHHH", qid, 0x8400 | 0x0100 | rcode, 1, len(answers), 0, 0) + question
    for rtype, rdata in answers:
        out += struct.pack(">HHHIH", 0xC00C, rtype, 1, 60, len(rdata)) + rdata
    return out


def serve_dns():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 53))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", 53))
    t.listen(16)

    def udp():
        while True:
            q, addr = u.recvfrom(4096)
            a = dns_answer(q, CURRENT["case"])
            if a:
                u.sendto(a, addr)

    def tcp():
        while True:
            c, _ = t.accept()
            try:
                c.settimeout(5)
                n = struct.unpack(">H", c.recv(2))[0]
                q = b""
                while len(q) < n:
                    part = c.recv(n - len(q))
                    if not part:
                        break
                    q += part
                a = dns_answer(q, CURRENT["case"])
                if a:
                    c.sendall(struct.pack(">H", len(a)) + a)
            except (OSError, struct.error):
                pass
            finally:
                c.close()

    threading.Thread(target=udp, daemon=True).start()
    threading.Thread(target=tcp, daemon=True).start()


def netns_inner(mxray_bin):
    cases = json.loads(CASES.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        (d / "resolv.conf").write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
        subprocess.run(["mount", "--bind", str(d / "resolv.conf"), "/etc/resolv.conf"], check=True)
        make_pki(d)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(d / "leaf.pem", d / "leaf.key")
        server = QuietServer(("127.0.0.1", 443), Handler)
        server.socket = sctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        serve_dns()
        env = dict(os.environ, SSL_CERT_FILE=str(d / "ca.pem"))
        query = str(Path(sys.executable).parent / "mta-sts-query")
        bad = 0
        for case in cases:
            CURRENT["case"] = case
            r = subprocess.run([query, DOMAIN], env=env, capture_output=True, text=True, timeout=60)
            m = re.search(r"STSFetchResult\.(\w+)", r.stdout)
            got = m.group(1) if m else "?"
            ok = got == case["resolver"]
            line = f"{'ok ' if ok else 'BAD'} {case['name']:<26} mta-sts-query={got:<12}"
            bad += not ok
            if mxray_bin:
                r = subprocess.run(
                    [mxray_bin, "mta-sts", DOMAIN, "--resolver", "127.0.0.1:53", "--allow-private",
                     "--ca-file", str(d / "ca.pem"), "--jsonl", "-"],
                    capture_output=True, text=True, timeout=120)
                rec = next((json.loads(l) for l in r.stdout.splitlines()
                            if '"mta_sts_policy"' in l), None)
                if rec is None:
                    mgot = f"? (exit {r.returncode}: {r.stderr.strip()[-200:]})"
                else:
                    mgot = rec["status"] + (f"/{rec['error_class']}" if rec.get("error_class") else "")
                mok = mgot == case["mxray"]
                bad += not mok
                line += f" {'ok ' if mok else 'BAD'} mxray={mgot}"
            print(line, flush=True)
        server.shutdown()
        print(f"netns end-to-end: {len(cases)} cases, {bad} mismatches with the table")
        return 1 if bad else 0


if __name__ == "__main__":
    if "--netns-inner" in sys.argv:
        sys.exit(netns_inner(os.environ.get("MXRAY_BIN")))
    if "--netns" in sys.argv:
        cmd = ["unshare", "--net", "--mount", "--propagation", "private",
               sys.executable, __file__, "--netns-inner"]
        sys.exit(subprocess.run(cmd).returncode)
    sys.exit(main())
