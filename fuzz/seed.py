#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ (seed-*.bin).

The seeds are the cases of the unit and interop tests, in each target's input format (see
the target's doc comment: most take a selector byte first). The fuzzer's own finds are added
next to them after a long run (`cargo fuzz cmin`, docs/fuzzing.md). Run from anywhere:
    python3 fuzz/seed.py
"""
import hashlib, os, struct, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16] + ".bin"
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- SMTP -----------------------------------------------------------------------------------
GREETING = b"220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n"
EHLO = (b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
        b"250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
        b"250-DSN\r\n250 SMTPUTF8\r\n")
EHLO_TLS = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
MASKED = b"250-mx.example.com\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n"
replies = [
    GREETING, EHLO, EHLO_TLS, MASKED,
    b"220-mx.example.com ESMTP\r\n220-second line\r\n220 last\r\n",
    b"250-a\n250-STARTTLS\n250 b\n",  # bare LF
    b"250-a\r\n251-mixed codes\r\n250 done\r\n",
    b"220\r\n", b"421 4.3.2 Service not available, closing\r\n",
    b"554 5.7.1 no\r\n", b"220 " + b"x" * 3000 + b"\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1",  # a TLS ClientHello where a reply belongs
    b"250-STARTTLS \r\n250 starttls\r\n", b"250-S T A R T T L S\r\n250 OK\r\n",
    b"220 ok\r\n" * 40,
]
for r in replies:
    put("smtp_reply", b"\x00\x80" + r)
    put("smtp_reply", b"\x10\xf0" + r)
dialogues = [
    GREETING + EHLO + b"220 2.0.0 Ready to start TLS\r\n" + EHLO_TLS + b"221 2.0.0 Bye\r\n",
    GREETING + EHLO_TLS + b"221 Bye\r\n",
    GREETING + MASKED + b"221 Bye\r\n",
    GREETING + b"502 5.5.2 EHLO not implemented\r\n250 mx.example.com\r\n221 Bye\r\n",
    GREETING + EHLO + b"454 4.7.0 TLS not available\r\n221 Bye\r\n",
    GREETING + b"421 4.7.0 busy\r\n",
    b"554 5.7.1 go away\r\n",
    GREETING + EHLO + b"220 go ahead\r\n\x16\x03\x03",
    b"220 mx ESMTP\r\n" + EHLO_TLS + b"221 Bye\r\n",
]
for mode in (0, 1, 2, 4, 8):
    for d in dialogues:
        put("smtp_dialogue", bytes([mode]) + d)

# ---- certificates ---------------------------------------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    for i, args in enumerate([
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        ["-newkey", "rsa:2048"],
        ["-newkey", "ed25519"],
    ]):
        key, der = os.path.join(tmp, f"k{i}"), os.path.join(tmp, f"c{i}")
        subprocess.run(["openssl", "req", "-x509", *args, "-nodes", "-keyout", key,
                        "-outform", "DER", "-out", der, "-days", "30",
                        "-subj", "/CN=mx.example.com",
                        "-addext", "subjectAltName=DNS:mx.example.com,DNS:*.example.net"],
                       check=True, capture_output=True)
        cert = open(der, "rb").read()
        for head in (b"\x03\x01\x01\x20", b"\x02\x00\x00\x40", b"\x03\x00\x02\x40"):
            put("certificate_dane", head + cert)

# ---- MTA-STS, TLS-RPT ---------------------------------------------------------------------
for t in [b"v=STSv1; id=20190429T010101;", b"v=STSv1;id=abc123", b"v=STSv1; id=a; ext=1",
          b"v=STSv1; id=1\nv=STSv1; id=2", b"v=spf1 -all\nv=STSv1; id=x1",
          b"v=STSv2; id=1", b"v=STSv1; id=" + b"a" * 40, b"v=STSv1 ; id = 1 ;"]:
    put("mtasts_txt", t)
POLICY = b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n"
for p in [POLICY, POLICY.replace(b"\n", b"\r\n"), b"version: STSv1\nmode: testing\nmx: mx\nmax_age: 86400",
          b"version: STSv1\nmode: none\nmax_age: 0\n", b"version: STSv1\nmode: enforce\nmax_age: 99999999999\nmx: a\n",
          b"mode: enforce\nversion: STSv1\nmx: .example.com\nmx: *.*.bad\nmax_age: 1\nextra: x\n",
          b"version: STSv1\nmode: enforce\n" + b"mx: *.mx.example.com\n" * 100 + b"max_age: 604800\n"]:
    for sel in (0, 2):
        put("mtasts_policy", bytes([sel]) + b"text/plain; charset=utf-8\n" + p)
        put("mtasts_policy", bytes([sel]) + p)
for r in [b"v=TLSRPTv1; rua=mailto:tlsrpt@example.com", b"v=TLSRPTv1;rua=https://r.example.com/v1",
          b"v=TLSRPTv1; rua=mailto:a@example.com,https://b.example.com/x",
          b"v=TLSRPTv1; rua=ftp://x", b"v=TLSRPTv1; rua=mailto:a@b\nv=TLSRPTv1; rua=mailto:c@d",
          b"v=TLSRPTv1; rua=mailto:a%2Cb@example.com; rua=mailto:x@y", b"v=TLSRPTv2; rua=mailto:a@b"]:
    put("tlsrpt_record", r)


# ---- DNS ----------------------------------------------------------------------------------
def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def msg(qname, qtype, answers=(), rcode=0, flags=0x8180, additional=()):
    h = struct.pack(">HHHHHH", 0x1234, flags | rcode, 1, len(answers), 0, len(additional))
    return h + name(qname) + struct.pack(">HH", qtype, 1) + b"".join(answers) + b"".join(additional)


PTR = b"\xc0\x0c"  # the question's name
opt_ede = b"\x00" + struct.pack(">HHIH", 41, 1232, 0x8000, 4 + 2 + 9) + struct.pack(">HHH", 15, 2 + 9, 6) + b"DNSSEC bo"
answers = [
    msg("example.com", 15, [rr(PTR, 15, struct.pack(">H", 10) + name("mx1.example.com")),
                            rr(PTR, 15, struct.pack(">H", 20) + name("mx2.example.net"))]),
    msg("example.com", 15, [rr(PTR, 15, struct.pack(">H", 0) + b"\x00")]),  # null MX
    msg("_25._tcp.mx1.example.com", 52, [rr(PTR, 52, b"\x03\x01\x01" + bytes(range(32)))], flags=0x81a0),
    msg("_mta-sts.example.com", 16, [rr(PTR, 16, b"\x1av=STSv1; id=20190429T0101")]),
    msg("mx1.example.com", 1, [rr(PTR, 5, name("alias.example.net")),
                               rr(name("alias.example.net"), 1, b"\x7f\x00\x00\x01")]),
    msg("mx1.example.com", 28, [rr(PTR, 28, b"\x00" * 15 + b"\x01")]),
    msg("example.com", 15, rcode=3), msg("example.com", 15, rcode=2, additional=[opt_ede]),
    msg("example.com", 15, flags=0x8380),  # TC
    msg("a.example", 5, [rr(PTR, 5, name("b.example")), rr(name("b.example"), 5, name("a.example"))]),
    # A compression pointer that points at itself.
    struct.pack(">HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + b"\xc0\x0c\x00\x0f\x00\x01" + b"\xc0\x0c" * 4,
]
for a in answers:
    for sel in (0x01, 0x04, 0x06, 0x81):
        put("dns_answer", bytes([sel]) + a)

# ---- canary control -----------------------------------------------------------------------
for req, ans in [(b"EXPECT", b'{"greeting":"220 x\\r\\n"}'), (b"LOG 127.0.99.1:4000", b'{"error":"not_found"}'),
                 (b"FIND abc-123", b"{}"), (b"QUIT", b"[]"),
                 (b"LOG 127.0.0.1:1 " + b"00" * 16 + b" " + b"00" * 32 + b"\r\n", b"ab " + b'{"a":1}'),
                 (b"EHLO client.example\r\nSTARTTLS\r\nQUIT", b"unauthenticated")]:
    put("canary_control", bytes([len(req)]) + req + ans)
print("seeds written under", os.path.join(HERE, "corpus"))
