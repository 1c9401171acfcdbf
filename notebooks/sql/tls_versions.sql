-- Question: Per scan date and vantage, which TLS versions, key-exchange groups and cipher
--   suites do the IP addresses that completed STARTTLS negotiate with mxray, and what share of
--   those IPs uses each combination? (mxray offers TLS 1.2 and 1.3 only: servers limited to
--   older versions show up as error_class tls_incompatible in smtp_probes, not here.)
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   tls_version: negotiated version (TLSv1.2, TLSv1.3)
--   kx_group: negotiated key-exchange group (X25519, secp256r1, ...)
--   cipher: negotiated cipher suite, IANA name
--   ips: distinct IP:port destinations that negotiated this combination
--   share: ips / distinct IP:port destinations that completed STARTTLS on that date and vantage
SELECT
    scan_date,
    vantage,
    tls_version,
    kx_group,
    cipher,
    uniqExact(ip, port) AS ips,
    ips / any(total) AS share
FROM (
    SELECT
        s.scan_date AS scan_date,
        p.vantage AS vantage,
        p.ip AS ip,
        p.port AS port,
        ifNull(p.tls_version, '') AS tls_version,
        ifNull(p.kx_group, '') AS kx_group,
        ifNull(p.cipher, '') AS cipher
    FROM smtp_probes AS p
    INNER JOIN scan_dates AS s ON p.scan_id = s.scan_id AND p.vantage = s.vantage
    WHERE p.result = 'starttls_ok'
) AS t
INNER JOIN (
    SELECT s.scan_date AS scan_date, p.vantage AS vantage, uniqExact(p.ip, p.port) AS total
    FROM smtp_probes AS p
    INNER JOIN scan_dates AS s ON p.scan_id = s.scan_id AND p.vantage = s.vantage
    WHERE p.result = 'starttls_ok'
    GROUP BY scan_date, vantage
) AS n ON n.scan_date = t.scan_date AND n.vantage = t.vantage
GROUP BY scan_date, vantage, tls_version, kx_group, cipher
ORDER BY scan_date, vantage, ips DESC, tls_version, kx_group, cipher
