//! The SQL behind each figure: the files of notebooks/sql, embedded at build time so the page
//! carries the query that reproduces every number (a reader runs it with chDB or ClickHouse).

/// One query of the SQL library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlFile {
    /// Anchor name on the page (`#sql-<name>`).
    pub name: &'static str,
    /// Path in the repository (`notebooks/sql/<name>.sql`), or a note for a page-only query.
    pub path: &'static str,
    /// The query.
    pub text: &'static str,
}

impl SqlFile {
    /// The page anchor of the query.
    pub fn anchor(&self) -> String {
        format!("sql-{}", self.name)
    }
}

macro_rules! library {
    ($($konst:ident => $name:literal,)+) => {
        $(
            #[doc = concat!("notebooks/sql/", $name, ".sql")]
            pub const $konst: SqlFile = SqlFile {
                name: $name,
                path: concat!("notebooks/sql/", $name, ".sql"),
                text: include_str!(concat!("../../../notebooks/sql/", $name, ".sql")),
            };
        )+
    };
}

library! {
    ADOPTION_DOMAINS => "adoption_domains",
    DANE_CLASSES => "dane_classes",
    DANE_BROKEN_DOMAINS => "dane_broken_domains",
    MTA_STS_CLASSES => "mta_sts_classes",
    MTA_STS_MX_NOT_COVERED => "mta_sts_mx_not_covered",
    VANTAGE_DISAGREEMENT => "vantage_disagreement",
    HISTORY_REGRESSION => "history_regression",
    STRIPPING_BY_NETWORK => "stripping_by_network",
    IP_ASN_LOOKUP => "ip_asn_lookup",
}

/// The domains with `stripping_suspected`: a one-line query with no file in notebooks/sql
/// (the library counts signals per network instead: stripping_by_network.sql).
pub const STRIPPING_DOMAINS: SqlFile = SqlFile {
    name: "stripping_domains",
    path: "page-only query (not in notebooks/sql)",
    text: "-- Domains with stripping_suspected, latest record per scan date, vantage and domain.\n\
SELECT scan_date, vantage, domain, stripping_signals\nFROM (\n    \
SELECT s.scan_date AS scan_date, d.vantage AS vantage, d.domain AS domain,\n        \
d.stripping_suspected AS suspected, d.stripping_signals AS stripping_signals\n    \
FROM domains AS d\n    \
INNER JOIN scan_dates AS s ON d.scan_id = s.scan_id AND d.vantage = s.vantage\n    \
ORDER BY d.scanned_at DESC\n    LIMIT 1 BY scan_date, vantage, domain\n)\n\
WHERE suspected = 1\nORDER BY scan_date, vantage, domain\n",
};

macro_rules! views {
    ($($konst:ident => $name:literal,)+) => {
        $(
            #[doc = concat!("The view of notebooks/sql/views/", $name, ".sql (created by `mxray \
                             migrate` and by notebooks/mxray_sql.py from that one file).")]
            pub const $konst: SqlFile = SqlFile {
                name: $name,
                path: concat!("notebooks/sql/views/", $name, ".sql"),
                text: include_str!(concat!("../../../notebooks/sql/views/", $name, ".sql")),
            };
        )+
        /// The views the queries read, each after the views it reads.
        pub const VIEWS: &[SqlFile] = &[$($konst),+];
    };
}

views! {
    SCAN_DATES => "scan_dates",
    STARTTLS_OBSERVATIONS => "starttls_observations",
}

/// Every query the page can link to, in page order, then the views they use.
pub const ALL: &[SqlFile] = &[
    ADOPTION_DOMAINS,
    DANE_CLASSES,
    DANE_BROKEN_DOMAINS,
    MTA_STS_CLASSES,
    MTA_STS_MX_NOT_COVERED,
    STRIPPING_DOMAINS,
    VANTAGE_DISAGREEMENT,
    HISTORY_REGRESSION,
    STRIPPING_BY_NETWORK,
    IP_ASN_LOOKUP,
    SCAN_DATES,
    STARTTLS_OBSERVATIONS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_query_is_a_query() {
        for q in ALL {
            assert!(q.text.contains("SELECT"), "{}", q.path);
        }
        assert!(ADOPTION_DOMAINS.text.contains("starttls_all_share"));
    }

    #[test]
    fn the_page_carries_every_view_its_queries_read() {
        // A reader who copies a query from the page needs the views too.
        for q in ALL {
            for view in VIEWS {
                if q.text.contains(view.name) {
                    assert!(ALL.contains(view), "{} reads {}", q.path, view.name);
                }
                assert!(
                    !q.text.contains(&format!("{} AS (", view.name)),
                    "{} defines {} again",
                    q.path,
                    view.name
                );
            }
        }
    }

    #[test]
    fn every_view_of_the_library_is_on_the_page() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../notebooks/sql/views");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("notebooks/sql/views")
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".sql")
                    .map(str::to_owned)
            })
            .collect();
        files.sort();
        let mut listed: Vec<&str> = VIEWS.iter().map(|v| v.name).collect();
        listed.sort_unstable();
        assert_eq!(files, listed);
    }
}
