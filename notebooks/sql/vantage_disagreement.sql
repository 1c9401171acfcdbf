-- Question: Which IP:port destinations offered STARTTLS to one vantage but not to another in
--   the same scan window (the same UTC scan date)? One row per destination, date and vantage
--   that did NOT see STARTTLS while another vantage did: the signal `vantage_disagreement`,
--   attributed to the vantage whose path most likely strips it. Only sessions that reached an
--   EHLO answer count as observations (a timeout says nothing about STARTTLS).
-- Columns:
--   scan_date: UTC date of the scan window (Date)
--   vantage: the vantage that did not see STARTTLS
--   ip: destination IP address
--   port: destination TCP port
--   seen_by: the vantages that saw STARTTLS advertised on the same date (sorted)
--   hosts: MX host names (SNI) probed on this IP from this vantage (sorted)
--   results: probe results from this vantage (sorted, distinct)
--   signals: stripping signals recorded in this vantage's probes (sorted, distinct)
SELECT
    o.scan_date AS scan_date,
    o.vantage AS vantage,
    o.ip AS ip,
    o.port AS port,
    w.seen_by AS seen_by,
    o.hosts AS hosts,
    o.results AS results,
    o.signals AS signals
FROM starttls_observations AS o
INNER JOIN (
    SELECT scan_date, ip, port, arraySort(groupUniqArray(vantage)) AS seen_by
    FROM starttls_observations
    WHERE offered = 1
    GROUP BY scan_date, ip, port
) AS w ON w.scan_date = o.scan_date AND w.ip = o.ip AND w.port = o.port
WHERE o.offered = 0
ORDER BY scan_date, vantage, ip, port
