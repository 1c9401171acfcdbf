-- Question: Which network (origin AS, by longest-prefix match in the user-provided ip_asn
--   table, loaded by scripts/load-asn from CAIDA pfx2as or iptoasn data) announces each probed
--   IP address? IPs without a covering prefix get asn 0.
-- Columns:
--   ip: destination IP address (every distinct IP of smtp_probes)
--   asn: origin AS number of the longest matching prefix (0: not covered)
--   as_name: AS name or description, when the source had one
--   country: country code, when the source had one
--   prefix: the matching prefix, network/length (empty: not covered)
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
    matches AS (
        SELECT
            c.ip AS ip,
            argMax(a.asn, a.length) AS asn,
            argMax(a.as_name, a.length) AS as_name,
            argMax(a.country, a.length) AS country,
            argMax(concat(a.network, '/', toString(a.length)), a.length) AS prefix
        FROM candidates AS c
        INNER JOIN ip_asn AS a
            ON a.family = c.family AND a.length = c.len AND a.network = c.network
        GROUP BY c.ip
    )
SELECT
    i.ip AS ip,
    ifNull(m.asn, 0) AS asn,
    ifNull(m.as_name, '') AS as_name,
    ifNull(m.country, '') AS country,
    ifNull(m.prefix, '') AS prefix
FROM (SELECT DISTINCT ip FROM smtp_probes) AS i
LEFT JOIN matches AS m ON m.ip = i.ip
ORDER BY ip
