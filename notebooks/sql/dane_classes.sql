-- Question: Per scan date and vantage, how many mail-receiving domains fall in each DANE class
--   (none, insecure, valid, partial, and the broken ones: bogus, no_tls, mismatch, unusable),
--   and what share of the mail domains is each? Latest record per domain, date and vantage.
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   dane: the domain's DANE verdict (vocabulary of domains.dane)
--   broken: 1 when the class is a DANE failure a DANE sender would refuse to deliver through
--   domains: mail domains (mx_kind mx or implicit) in this class
--   share: domains / mail domains of the scan date and vantage
SELECT
    scan_date,
    vantage,
    dane,
    toUInt8(dane IN ('bogus', 'no_tls', 'mismatch', 'unusable')) AS broken,
    count() AS domains,
    count() / sum(count()) OVER (PARTITION BY scan_date, vantage) AS share
FROM (
    SELECT s.scan_date AS scan_date, d.vantage AS vantage, d.domain AS domain, d.dane AS dane
    FROM domains AS d
    INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage
    WHERE d.mx_kind IN ('mx', 'implicit')
    ORDER BY d.scanned_at DESC
    LIMIT 1 BY scan_date, vantage, domain
)
GROUP BY scan_date, vantage, dane
ORDER BY scan_date, vantage, domains DESC, dane
