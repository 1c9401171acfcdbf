-- Question: Which MX providers (MX host names grouped by suffix) serve the most domains, per scan
--   date and vantage, and what is the posture of the domains they serve (STARTTLS on all MX,
--   PKIX-valid, DANE valid, MTA-STS enforce)? A domain with MX hosts at several providers counts
--   once for each of them. Latest record per domain, date and vantage.
-- Param suffix_labels UInt8 = 0: 0 groups by the registrable domain (cutToFirstSignificantSubdomain: aspmx.l.google.com is google.com); N groups by the last N labels of the MX host name
-- Param top UInt32 = 20: providers listed per scan date and vantage
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   provider: the MX host suffix
--   domains: distinct mail domains with at least one MX host at the provider
--   mx_hosts: distinct MX host names of the provider
--   domain_share: domains / all mail domains of the scan date and vantage
--   starttls_all_share: share of the provider's domains with starttls = all
--   pkix_all_share: share of the provider's domains with pkix = all
--   dane_valid_share: share of the provider's domains with dane = valid
--   mta_sts_enforce_share: share of the provider's domains with mta_sts = enforce
WITH
    latest AS (
        SELECT
            s.scan_date AS scan_date,
            d.vantage AS vantage,
            d.domain AS domain,
            d.mx_hosts AS mx_hosts,
            d.starttls AS starttls,
            d.pkix AS pkix,
            d.dane AS dane,
            d.mta_sts AS mta_sts
        FROM domains AS d
        INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage
        WHERE d.mx_kind IN ('mx', 'implicit')
        ORDER BY d.scanned_at DESC
        LIMIT 1 BY scan_date, vantage, domain
    ),
    per_provider AS (
        SELECT
            scan_date,
            vantage,
            if({suffix_labels:UInt8} = 0,
                cutToFirstSignificantSubdomain(mx_host),
                arrayStringConcat(
                    arraySlice(splitByChar('.', mx_host), -toInt64({suffix_labels:UInt8})), '.')
            ) AS provider,
            domain,
            mx_host,
            starttls,
            pkix,
            dane,
            mta_sts
        FROM latest
        ARRAY JOIN mx_hosts AS mx_host
    )
SELECT
    p.scan_date AS scan_date,
    p.vantage AS vantage,
    p.provider AS provider,
    uniqExact(p.domain) AS domains,
    uniqExact(p.mx_host) AS mx_hosts,
    domains / any(t.total) AS domain_share,
    uniqExactIf(p.domain, p.starttls = 'all') / domains AS starttls_all_share,
    uniqExactIf(p.domain, p.pkix = 'all') / domains AS pkix_all_share,
    uniqExactIf(p.domain, p.dane = 'valid') / domains AS dane_valid_share,
    uniqExactIf(p.domain, p.mta_sts = 'enforce') / domains AS mta_sts_enforce_share
FROM per_provider AS p
INNER JOIN (
    SELECT scan_date, vantage, count() AS total FROM latest GROUP BY scan_date, vantage
) AS t ON t.scan_date = p.scan_date AND t.vantage = p.vantage
GROUP BY scan_date, vantage, provider
ORDER BY scan_date, vantage, domains DESC, provider
LIMIT {top:UInt32} BY scan_date, vantage
