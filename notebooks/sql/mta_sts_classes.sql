-- Question: Per scan date and vantage, how many domains are in each MTA-STS status (none,
--   lookup_error, txt_invalid, fetch_error by error class, policy_invalid, enforce, testing,
--   mode_none), how many of them comply with their policy, and what share of all scanned
--   domains is each? Latest record per domain, date and vantage.
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   mta_sts: the domain's MTA-STS status (vocabulary of domains.mta_sts)
--   error_class: the fetch failure class for fetch_error (dns, connect, tls, cert, http_status, redirect, content_type, too_large, timeout), else empty
--   domains: domains in this status and class
--   compliant: of those, domains whose MX set complies with the valid policy (mta_sts_compliant)
--   share: domains / all domains of the scan date and vantage
SELECT
    scan_date,
    vantage,
    mta_sts,
    error_class,
    count() AS domains,
    countIf(compliant) AS compliant,
    count() / sum(count()) OVER (PARTITION BY scan_date, vantage) AS share
FROM (
    SELECT
        s.scan_date AS scan_date,
        d.vantage AS vantage,
        d.domain AS domain,
        d.mta_sts AS mta_sts,
        ifNull(d.mta_sts_error, '') AS error_class,
        ifNull(d.mta_sts_compliant = 1, 0) AS compliant
    FROM domains AS d
    INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage
    ORDER BY d.scanned_at DESC
    LIMIT 1 BY scan_date, vantage, domain
)
GROUP BY scan_date, vantage, mta_sts, error_class
ORDER BY scan_date, vantage, domains DESC, mta_sts, error_class
