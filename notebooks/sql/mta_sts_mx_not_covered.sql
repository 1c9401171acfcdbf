-- Question: Which domains publish a valid MTA-STS policy (enforce, testing or mode none) whose
--   `mx` patterns do not cover every MX host of the domain (RFC 8461 §4.1: exact name, or
--   `*.suffix` matching exactly one more leftmost label)? A sending MTA in enforce mode refuses
--   delivery to the uncovered hosts.
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   domain: the policy domain
--   mode: the policy mode (enforce, testing, none)
--   mx_patterns: the policy's mx patterns
--   mx_hosts: the domain's MX hosts
--   uncovered: the MX hosts no pattern matches
--   mta_sts_compliant: the domain's mta_sts_compliant verdict (0/1)
SELECT
    scan_date,
    vantage,
    domain,
    mode,
    mx_patterns,
    mx_hosts,
    uncovered,
    mta_sts_compliant
FROM (
    SELECT
        s.scan_date AS scan_date,
        d.vantage AS vantage,
        d.domain AS domain,
        ifNull(m.mode, '') AS mode,
        arrayMap(x -> lower(x), m.mx_patterns) AS mx_patterns,
        d.mx_hosts AS mx_hosts,
        arrayFilter(
            h -> NOT arrayExists(
                p -> (p = lower(h))
                    OR (startsWith(p, '*.')
                        AND length(h) > length(p) - 1
                        AND endsWith(lower(h), substring(p, 2))
                        AND position(substring(h, 1, length(h) - length(p) + 1), '.') = 0),
                arrayMap(x -> lower(x), m.mx_patterns)),
            d.mx_hosts) AS uncovered,
        toUInt8(ifNull(d.mta_sts_compliant = 1, 0)) AS mta_sts_compliant
    FROM domains AS d
    INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage
    INNER JOIN mta_sts_policies AS m
        ON m.scan_id = d.scan_id AND m.vantage = d.vantage AND m.domain = d.domain
    WHERE m.status IN ('enforce', 'testing', 'mode_none')
    ORDER BY d.scanned_at DESC
    LIMIT 1 BY scan_date, vantage, domain
)
WHERE notEmpty(uncovered)
ORDER BY scan_date, vantage, domain
