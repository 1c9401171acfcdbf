-- Question: Which domains publish DNSSEC-secure TLSA records that fail: `mismatch` (no TLSA
--   record matched the presented chain) or `no_tls` (secure TLSA, but an MX did not complete
--   STARTTLS: a downgrade a DANE sender refuses)? One row per domain, scan date and vantage
--   (latest record), with what each MX host's probes saw.
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   domain: the domain
--   dane: mismatch or no_tls
--   starttls: the domain's STARTTLS verdict
--   mx_hosts: the domain's MX hosts in preference order
--   probes: per probe of those hosts, `host ip result dane` (Array(String), sorted)
WITH broken AS (
    SELECT
        s.scan_date AS scan_date,
        d.scan_id AS scan_id,
        d.vantage AS vantage,
        d.domain AS domain,
        d.dane AS dane,
        d.starttls AS starttls,
        d.mx_hosts AS mx_hosts
    FROM domains AS d
    INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage
    WHERE d.dane IN ('mismatch', 'no_tls')
    ORDER BY d.scanned_at DESC
    LIMIT 1 BY scan_date, vantage, domain
)
SELECT
    b.scan_date AS scan_date,
    b.vantage AS vantage,
    b.domain AS domain,
    any(b.dane) AS dane,
    any(b.starttls) AS starttls,
    any(b.mx_hosts) AS mx_hosts,
    arraySort(groupArrayIf(concat(p.sni, ' ', p.ip, ' ', p.result, ' ', p.dane), p.ip != '')) AS probes
FROM (SELECT *, arrayJoin(if(empty(mx_hosts), [''], mx_hosts)) AS mx_host FROM broken) AS b
LEFT JOIN (
    SELECT scan_id, vantage, ifNull(sni, '') AS sni, ip, result, dane FROM smtp_probes
) AS p ON p.scan_id = b.scan_id AND p.vantage = b.vantage AND p.sni = b.mx_host
GROUP BY scan_date, vantage, domain
ORDER BY scan_date, vantage, domain
