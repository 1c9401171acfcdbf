-- Question: Per scan date, vantage and destination network (origin AS from ip_asn), how many
--   IP:port destinations show each stripping signal? Signals recorded by the scanner in
--   smtp_probes (starttls_mangled, banner_masked, starttls_rejected, tls_failed_after_ready,
--   missing_despite_policy) plus the cross-vantage signal vantage_disagreement (the vantage that
--   did not see STARTTLS while another vantage did on the same date), computed as in
--   vantage_disagreement.sql. (history_regression is per vantage over time: see
--   history_regression.sql.)
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   asn: origin AS of the destination (0: not in ip_asn)
--   as_name: AS name, when ip_asn has one
--   signal: the stripping signal (vocabulary of smtp_probes.stripping_signals)
--   ips: distinct IP:port destinations with the signal
--   probes: probes (or, for vantage_disagreement, destinations) carrying the signal
WITH
    candidates AS (
        SELECT ip, 4 AS family, len, toString(IPv4CIDRToRange(toIPv4(ip), len).1) AS network
        FROM (SELECT DISTINCT ip FROM smtp_probes WHERE isIPv4String(ip))
        ARRAY JOIN range(0, 33) AS len
        UNION ALL
        SELECT ip, 6 AS family, len, toString(IPv6CIDRToRange(toIPv6(ip), len).1) AS network
        FROM (SELECT DISTINCT ip FROM smtp_probes WHERE isIPv6String(ip))
        ARRAY JOIN range(0, 129) AS len
    ),
    ip_network AS (
        SELECT
            c.ip AS ip,
            argMax(a.asn, a.length) AS asn,
            argMax(a.as_name, a.length) AS as_name
        FROM candidates AS c
        INNER JOIN ip_asn AS a
            ON a.family = c.family AND a.length = c.len AND a.network = c.network
        GROUP BY c.ip
    ),
    recorded AS (
        SELECT s.scan_date AS scan_date, p.vantage AS vantage, p.ip AS ip, p.port AS port,
            signal
        FROM smtp_probes AS p
        INNER JOIN scan_dates AS s ON p.scan_id = s.scan_id AND p.vantage = s.vantage
        ARRAY JOIN p.stripping_signals AS signal
    ),
    disagreement AS (
        SELECT o.scan_date AS scan_date, o.vantage AS vantage, o.ip AS ip, o.port AS port,
            'vantage_disagreement' AS signal
        FROM starttls_observations AS o
        INNER JOIN (
            SELECT DISTINCT scan_date, ip, port FROM starttls_observations WHERE offered = 1
        ) AS w ON w.scan_date = o.scan_date AND w.ip = o.ip AND w.port = o.port
        WHERE o.offered = 0
    ),
    signals AS (
        SELECT scan_date, vantage, ip, port, signal FROM recorded
        UNION ALL
        SELECT scan_date, vantage, ip, port, signal FROM disagreement
    )
SELECT
    g.scan_date AS scan_date,
    g.vantage AS vantage,
    ifNull(n.asn, 0) AS asn,
    ifNull(n.as_name, '') AS as_name,
    g.signal AS signal,
    uniqExact(g.ip, g.port) AS ips,
    count() AS probes
FROM signals AS g
LEFT JOIN ip_network AS n ON n.ip = g.ip
GROUP BY scan_date, vantage, asn, as_name, signal
ORDER BY scan_date, vantage, ips DESC, asn, signal
