"""mta-sts-query (postfix-mta-sts-resolver) for every lab domain: its verdict must agree with
mxray's `mta_sts` status, and a valid policy must be the same policy."""

import pytest

from clients import mta_sts_query
from conftest import DOMAINS

# mxray status -> STSFetchResult of postfix-mta-sts-resolver.
AGREES = {
    "enforce": "VALID",
    "testing": "VALID",
    "mode_none": "VALID",
    "none": "NONE",
    # The resolver collapses every fetch and policy failure into FETCH_ERROR.
    "fetch_error": "FETCH_ERROR",
    "policy_invalid": "FETCH_ERROR",
}


@pytest.fixture(scope="session")
def sts(lab):
    return {d: mta_sts_query(d, lab.ca.pem) for d in DOMAINS}


@pytest.mark.parametrize("domain", DOMAINS)
def test_mta_sts_agrees(scan_ad, sts, domain):
    rec = scan_ad["domain"][domain]
    q = sts[domain]
    assert q.result == AGREES[rec["mta_sts"]], q.text
    if q.result == "VALID":
        policy = scan_ad["mta_sts_policy"][domain]
        assert q.mode == policy["mode"], q.text
        assert q.mx == policy["mx_patterns"], q.text
