-- Question: Per scan date and vantage, how many distinct MX hosts and distinct IP addresses
--   completed STARTTLS, presented a PKIX-valid certificate, and passed DANE; and what share of
--   the probed hosts and IPs is that? A host counts when every probe of it (all its addresses)
--   succeeded; an IP counts when any probe of it (any SNI) succeeded.
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   mx_hosts: distinct MX host names probed (the SNI of the probes)
--   mx_hosts_starttls: hosts whose every probed address completed STARTTLS
--   mx_hosts_pkix: hosts whose every probed address presented a PKIX-valid certificate
--   mx_hosts_dane_valid: hosts whose every probed address passed DANE (dane = valid)
--   ips: distinct IP:port destinations probed
--   ips_starttls: IPs where a probe completed STARTTLS
--   ips_pkix: IPs where a probe presented a PKIX-valid certificate
--   mx_hosts_starttls_share: mx_hosts_starttls / mx_hosts
--   mx_hosts_pkix_share: mx_hosts_pkix / mx_hosts
--   mx_hosts_dane_valid_share: mx_hosts_dane_valid / mx_hosts
--   ips_starttls_share: ips_starttls / ips
--   ips_pkix_share: ips_pkix / ips
WITH
    probes AS (
        SELECT
            s.scan_date AS scan_date,
            p.vantage AS vantage,
            ifNull(p.sni, '') AS host,
            p.ip AS ip,
            p.port AS port,
            p.result = 'starttls_ok' AS tls_ok,
            ifNull(p.pkix_valid = 1, 0) AS pkix_ok,
            p.dane = 'valid' AS dane_ok
        FROM smtp_probes AS p
        INNER JOIN scan_dates AS s ON p.scan_id = s.scan_id AND p.vantage = s.vantage
    ),
    hosts AS (
        SELECT
            scan_date,
            vantage,
            count() AS mx_hosts,
            countIf(all_tls) AS mx_hosts_starttls,
            countIf(all_pkix) AS mx_hosts_pkix,
            countIf(all_dane) AS mx_hosts_dane_valid
        FROM (
            SELECT scan_date, vantage, host,
                min(tls_ok) AS all_tls, min(pkix_ok) AS all_pkix, min(dane_ok) AS all_dane
            FROM probes
            WHERE host != ''
            GROUP BY scan_date, vantage, host
        )
        GROUP BY scan_date, vantage
    ),
    ips AS (
        SELECT
            scan_date,
            vantage,
            count() AS ips,
            countIf(any_tls) AS ips_starttls,
            countIf(any_pkix) AS ips_pkix
        FROM (
            SELECT scan_date, vantage, ip, port, max(tls_ok) AS any_tls, max(pkix_ok) AS any_pkix
            FROM probes
            GROUP BY scan_date, vantage, ip, port
        )
        GROUP BY scan_date, vantage
    )
SELECT
    h.scan_date AS scan_date,
    h.vantage AS vantage,
    h.mx_hosts AS mx_hosts,
    h.mx_hosts_starttls AS mx_hosts_starttls,
    h.mx_hosts_pkix AS mx_hosts_pkix,
    h.mx_hosts_dane_valid AS mx_hosts_dane_valid,
    i.ips AS ips,
    i.ips_starttls AS ips_starttls,
    i.ips_pkix AS ips_pkix,
    h.mx_hosts_starttls / h.mx_hosts AS mx_hosts_starttls_share,
    h.mx_hosts_pkix / h.mx_hosts AS mx_hosts_pkix_share,
    h.mx_hosts_dane_valid / h.mx_hosts AS mx_hosts_dane_valid_share,
    i.ips_starttls / i.ips AS ips_starttls_share,
    i.ips_pkix / i.ips AS ips_pkix_share
FROM hosts AS h
INNER JOIN ips AS i ON h.scan_date = i.scan_date AND h.vantage = i.vantage
ORDER BY scan_date, vantage
