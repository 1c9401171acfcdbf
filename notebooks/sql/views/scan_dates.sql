-- View: scan_dates, one row per scan and vantage: the UTC date the scan started, the date every
--   query of the library groups by. The one definition of it: `mxray migrate` creates it in
--   ClickHouse (schema version 5, on a cluster on every node over the Distributed `scans`), and
--   notebooks/mxray_sql.py in its chDB session over Parquet files.
-- Columns:
--   scan_id: the scan
--   vantage: the scan's vantage label
--   scan_date: UTC date of the scan start (Date)
--   started: the scan start, seconds since 1970-01-01 UTC (Int64)
SELECT
    scan_id,
    vantage,
    toDate(min(started_at)) AS scan_date,
    toInt64(toUnixTimestamp(min(started_at))) AS started
FROM scans
GROUP BY scan_id, vantage
