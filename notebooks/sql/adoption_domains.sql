-- Question: Per scan date and vantage, how many mail-receiving domains have STARTTLS on all MX
--   hosts, PKIX-valid certificates on all of them, valid or broken DANE, a valid MTA-STS policy
--   (by mode), an MTA-STS-compliant MX set, and TLS-RPT; and what share of the mail domains is
--   that? Mail domains are those with mx_kind `mx` or `implicit`; when a vantage scanned a
--   domain more than once on a date, its latest record counts.
-- Columns:
--   scan_date: UTC date of the scan start (Date)
--   vantage: the vantage label of the scan
--   domains: domains scanned
--   mail_domains: domains with mx_kind mx or implicit (the denominator of every share)
--   starttls_all: mail domains whose every answering MX completed STARTTLS (starttls = all)
--   pkix_all: mail domains whose every MX that completed TLS is PKIX-valid (pkix = all)
--   dane_valid: mail domains with dane = valid
--   dane_broken: mail domains with dane bogus, no_tls, mismatch or unusable
--   mta_sts_enforce: mail domains with a valid MTA-STS policy in mode enforce
--   mta_sts_testing: mail domains with a valid MTA-STS policy in mode testing
--   mta_sts_compliant: mail domains whose MX set complies with their valid MTA-STS policy
--   tls_rpt: mail domains with a valid TLS-RPT record
--   starttls_all_share: starttls_all / mail_domains (0..1)
--   pkix_all_share: pkix_all / mail_domains
--   dane_valid_share: dane_valid / mail_domains
--   dane_broken_share: dane_broken / mail_domains
--   mta_sts_enforce_share: mta_sts_enforce / mail_domains
--   mta_sts_testing_share: mta_sts_testing / mail_domains
--   mta_sts_compliant_share: mta_sts_compliant / mail_domains
--   tls_rpt_share: tls_rpt / mail_domains
SELECT
    scan_date,
    vantage,
    count() AS domains,
    countIf(mail) AS mail_domains,
    countIf(mail AND starttls = 'all') AS starttls_all,
    countIf(mail AND pkix = 'all') AS pkix_all,
    countIf(mail AND dane = 'valid') AS dane_valid,
    countIf(mail AND dane IN ('bogus', 'no_tls', 'mismatch', 'unusable')) AS dane_broken,
    countIf(mail AND mta_sts = 'enforce') AS mta_sts_enforce,
    countIf(mail AND mta_sts = 'testing') AS mta_sts_testing,
    countIf(mail AND compliant) AS mta_sts_compliant,
    countIf(mail AND rpt) AS tls_rpt,
    starttls_all / mail_domains AS starttls_all_share,
    pkix_all / mail_domains AS pkix_all_share,
    dane_valid / mail_domains AS dane_valid_share,
    dane_broken / mail_domains AS dane_broken_share,
    mta_sts_enforce / mail_domains AS mta_sts_enforce_share,
    mta_sts_testing / mail_domains AS mta_sts_testing_share,
    mta_sts_compliant / mail_domains AS mta_sts_compliant_share,
    tls_rpt / mail_domains AS tls_rpt_share
FROM (
    SELECT
        s.scan_date AS scan_date,
        d.vantage AS vantage,
        d.domain AS domain,
        d.mx_kind IN ('mx', 'implicit') AS mail,
        d.starttls AS starttls,
        d.pkix AS pkix,
        d.dane AS dane,
        d.mta_sts AS mta_sts,
        ifNull(d.mta_sts_compliant = 1, 0) AS compliant,
        d.tls_rpt = 1 AS rpt
    FROM domains AS d
    INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage
    ORDER BY d.scanned_at DESC
    LIMIT 1 BY scan_date, vantage, domain
)
GROUP BY scan_date, vantage
ORDER BY scan_date, vantage
