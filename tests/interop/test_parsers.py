"""The parsers of the reference clients' output, on transcripts they printed (no servers)."""

from clients import finger_dane_verdict, parse_finger

MATCHED = """posttls-finger: Connected to mx.good.test[127.0.1.10]:25
posttls-finger: < 220 mx.good.test ESMTP mxray-interop
posttls-finger: > EHLO vm.localdomain
posttls-finger: < 250-mx.good.test
posttls-finger: < 250-PIPELINING
posttls-finger: < 250-STARTTLS
posttls-finger: < 250 CHUNKING
posttls-finger: > STARTTLS
posttls-finger: < 220 2.0.0 Ready to start TLS
posttls-finger: mx.good.test[127.0.1.10]:25: Matched DANE EE certificate at depth 0: 3 1 1 55
posttls-finger: Verified TLS connection established to mx.good.test[127.0.1.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
posttls-finger: > EHLO vm.localdomain
posttls-finger: < 250-mx.good.test
posttls-finger: < 250 CHUNKING
"""

MISMATCH = """posttls-finger: Connected to mx.tlsa-mismatch.test[127.0.1.10]:25
posttls-finger: < 220 mx.good.test ESMTP mxray-interop
posttls-finger: > EHLO vm.localdomain
posttls-finger: < 250-mx.good.test
posttls-finger: < 250 STARTTLS
posttls-finger: server certificate verification failed for mx.tlsa-mismatch.test[127.0.1.10]:25: num=65:no matching DANE TLSA records
posttls-finger: Untrusted TLS connection established to mx.tlsa-mismatch.test[127.0.1.10]:25: TLSv1.3 with cipher X
"""

BOGUS = """posttls-finger: warning: DANE TLSA lookup problem: Host or domain name not found.
posttls-finger: Failed to establish session to bogus.test via mx.bogus.test: TLSA lookup error for mx.bogus.test:25
"""

NO_TLS = """posttls-finger: dns_get_answer: type TLSA for _25._tcp.mx.dane-no-starttls.test
posttls-finger: Connected to mx.dane-no-starttls.test[127.0.1.11]:25
posttls-finger: < 220 mx.no-starttls.test ESMTP mxray-interop
posttls-finger: > EHLO vm.localdomain
posttls-finger: < 250-mx.no-starttls.test
posttls-finger: < 250 CHUNKING
posttls-finger: > QUIT
"""


def test_matched_dane():
    s = parse_finger(MATCHED)
    assert s.connected and s.banner == "mx.good.test ESMTP mxray-interop"
    assert s.ehlo_keywords == ["PIPELINING", "STARTTLS", "CHUNKING"]  # the first EHLO only
    assert (s.trust, s.tls_protocol) == ("Verified", "TLSv1.3")
    assert finger_dane_verdict(s) == "valid"


def test_mismatch_bogus_no_tls():
    assert finger_dane_verdict(parse_finger(MISMATCH)) == "mismatch"
    b = parse_finger(BOGUS)
    assert finger_dane_verdict(b) == "bogus" and not b.connected
    n = parse_finger(NO_TLS)
    assert not n.starttls_offered and finger_dane_verdict(n) == "no_tls"
    # The same session without TLSA records: DANE not applied.
    plain = parse_finger(NO_TLS.split("\n", 1)[1])
    assert finger_dane_verdict(plain) == "none|insecure"
