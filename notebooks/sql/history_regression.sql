-- Question: Which IP:port destinations offered STARTTLS to a vantage in an earlier scan but do
--   not offer it now (on that vantage's latest scan date)? The signal `history_regression`:
--   stripping that started on the path, or a server that lost TLS. Only sessions that reached an
--   EHLO answer count as observations (a timeout says nothing about STARTTLS).
-- Columns:
--   vantage: the vantage
--   ip: destination IP address
--   port: destination TCP port
--   now_date: the vantage's latest scan date, when STARTTLS was not offered (Date)
--   first_offered: the first earlier scan date it was offered (Date)
--   last_offered: the last earlier scan date it was offered (Date)
--   hosts: MX host names (SNI) probed on this IP now (sorted)
--   results: probe results now (sorted, distinct)
--   signals: stripping signals recorded now (sorted, distinct)
WITH
    latest AS (
        SELECT vantage, max(scan_date) AS now_date FROM scan_dates GROUP BY vantage
    ),
    offered_before AS (
        SELECT o.vantage AS vantage, o.ip AS ip, o.port AS port,
            min(o.scan_date) AS first_offered, max(o.scan_date) AS last_offered
        FROM starttls_observations AS o
        INNER JOIN latest AS l ON l.vantage = o.vantage
        WHERE o.offered = 1 AND o.scan_date < l.now_date
        GROUP BY vantage, ip, port
    )
SELECT
    o.vantage AS vantage,
    o.ip AS ip,
    o.port AS port,
    o.scan_date AS now_date,
    b.first_offered AS first_offered,
    b.last_offered AS last_offered,
    o.hosts AS hosts,
    o.results AS results,
    o.signals AS signals
FROM starttls_observations AS o
INNER JOIN latest AS l ON l.vantage = o.vantage AND l.now_date = o.scan_date
INNER JOIN offered_before AS b ON b.vantage = o.vantage AND b.ip = o.ip AND b.port = o.port
WHERE o.offered = 0
ORDER BY vantage, ip, port
