-- View: starttls_observations, one row per scan date, vantage and IP:port destination whose
--   sessions reached an EHLO answer (a timeout or refused connection says nothing about
--   STARTTLS, so it is no observation): whether any of them saw STARTTLS advertised. What the
--   stripping queries compare across vantages (vantage_disagreement, stripping_by_network) and
--   over time (history_regression). Created by `mxray migrate` (schema version 6) and by
--   notebooks/mxray_sql.py, from this one file.
-- Columns:
--   scan_date: UTC date of the scan start (Date, from scan_dates)
--   vantage: the vantage
--   ip: destination IP address
--   port: destination TCP port
--   offered: 1 when a session saw STARTTLS advertised, else 0
--   hosts: MX host names (SNI) probed on this destination (sorted)
--   results: probe results (sorted, distinct)
--   signals: stripping signals recorded in these probes (sorted, distinct)
SELECT
    s.scan_date AS scan_date,
    p.vantage AS vantage,
    p.ip AS ip,
    p.port AS port,
    max(toUInt8(p.starttls_advertised = 1)) AS offered,
    arraySort(groupUniqArray(ifNull(p.sni, ''))) AS hosts,
    arraySort(groupUniqArray(p.result)) AS results,
    arraySort(groupUniqArrayArray(p.stripping_signals)) AS signals
FROM smtp_probes AS p
INNER JOIN scan_dates AS s ON p.scan_id = s.scan_id AND p.vantage = s.vantage
WHERE p.result IN ('starttls_ok', 'no_starttls') OR p.starttls_advertised = 1
GROUP BY scan_date, vantage, ip, port
