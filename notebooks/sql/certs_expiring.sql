-- Question: Which leaf certificates presented by MX hosts on the latest scan date expire within
--   N days of the scan (or have already expired), ranked by how many domains use them?
-- Param days UInt32 = 30: the horizon, in days after the scan start
-- Columns:
--   scan_date: the latest scan date in the data (Date)
--   sha256: SHA-256 of the leaf certificate (key of table certificates)
--   subject: subject DN
--   issuer: issuer DN
--   not_after: end of validity (UTC)
--   days_left: whole days from the scan start to not_after (negative: already expired)
--   domains: distinct domains whose MX hosts presented the certificate (any vantage)
--   mx_hosts: distinct MX hosts that presented it
--   example_domains: up to five of those domains, sorted
WITH
    latest AS (
        SELECT * FROM scan_dates WHERE scan_date = (SELECT max(scan_date) FROM scan_dates)
    ),
    uses AS (
        SELECT l.scan_date AS scan_date, l.started AS started, d.domain AS domain,
            p.sni AS host, p.chain_sha256[1] AS sha256
        FROM (
            SELECT scan_id, vantage, domain, arrayJoin(mx_hosts) AS mx_host FROM domains
        ) AS d
        INNER JOIN latest AS l ON d.scan_id = l.scan_id AND d.vantage = l.vantage
        INNER JOIN (
            SELECT scan_id, vantage, ifNull(sni, '') AS sni, chain_sha256
            FROM smtp_probes
            WHERE notEmpty(chain_sha256)
        ) AS p ON p.scan_id = d.scan_id AND p.vantage = d.vantage AND p.sni = d.mx_host
    ),
    certs AS (
        SELECT sha256 AS cert_sha256, any(subject) AS cert_subject, any(issuer) AS cert_issuer,
            any(not_after) AS cert_not_after, toInt64(toUnixTimestamp(cert_not_after)) AS end_ts
        FROM certificates
        GROUP BY sha256
    )
SELECT
    any(u.scan_date) AS scan_date,
    u.sha256 AS sha256,
    any(c.cert_subject) AS subject,
    any(c.cert_issuer) AS issuer,
    any(c.cert_not_after) AS not_after,
    toInt64(floor((any(c.end_ts) - min(u.started)) / 86400)) AS days_left,
    uniqExact(u.domain) AS domains,
    uniqExact(u.host) AS mx_hosts,
    arraySlice(arraySort(groupUniqArray(u.domain)), 1, 5) AS example_domains
FROM uses AS u
INNER JOIN certs AS c ON c.cert_sha256 = u.sha256
GROUP BY u.sha256
HAVING days_left <= {days:UInt32}
ORDER BY domains DESC, days_left, sha256
