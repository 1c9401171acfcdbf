//! Verdict vocabularies: closed sets of lowercase strings (DESIGN.md "Verdict vocabularies").
//!
//! Every enum here serializes as its exact DESIGN.md string, in JSON, in ClickHouse
//! (`String` columns, RowBinary) and in Parquet. They are written by hand through
//! [`vocabulary!`] rather than with `#[serde(rename_all)]` because the ClickHouse RowBinary
//! serializer refuses serde unit variants; a plain string works everywhere.

/// Defines a vocabulary enum with `as_str`, `ALL`, `FromStr`, `Display`, string serde, and
/// the storage column impls (a text column, nullable, list element).
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact string written to every output.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::UnknownVariant {
                        vocabulary: stringify!($name),
                        value: other.to_owned(),
                    }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl ::serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of {:?}", [$($text),+])
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_bytes<E: ::serde::de::Error>(self, v: &[u8]) -> Result<$name, E> {
                        let s = ::std::str::from_utf8(v).map_err(E::custom)?;
                        self.visit_str(s)
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl $crate::columns::ColumnValue for $name {
            const TYPE: $crate::columns::ColumnType = $crate::columns::ColumnType::Str;
            const NULLABLE: bool = false;
            #[inline]
            fn visit<V: $crate::columns::RowVisitor>(&self, visitor: &mut V) {
                visitor.str(self.as_str());
            }
        }

        impl $crate::columns::NullableValue for $name {
            #[inline]
            fn visit_opt<V: $crate::columns::RowVisitor>(value: Option<&Self>, visitor: &mut V) {
                visitor.opt_str(value.map(|v| v.as_str()));
            }
        }

        impl $crate::columns::ListItem for $name {
            const LIST_TYPE: $crate::columns::ColumnType = $crate::columns::ColumnType::StrList;
            #[inline]
            fn visit_list<V: $crate::columns::RowVisitor>(items: &[Self], visitor: &mut V) {
                visitor.str_list(items.iter().map(|v| v.as_str()));
            }
        }
    };
}

vocabulary! {
    /// DNSSEC status of an RRset (RFC 4035 §4.3).
    pub enum DnssecStatus {
        /// A chain of trust from a trust anchor validated the answer (or its denial).
        Secure => "secure",
        /// Provably unsigned: a zone cut without DS on the way down.
        Insecure => "insecure",
        /// Signatures should be present and valid but are not (validation failed).
        Bogus => "bogus",
        /// Could not be determined (no answer, timeout, or the mode cannot tell).
        Indeterminate => "indeterminate",
    }
}

vocabulary! {
    /// How a domain receives mail, from its MX RRset.
    pub enum MxKind {
        /// An explicit MX RRset with at least one usable exchange.
        Mx => "mx",
        /// A null MX (`0 .`, RFC 7505): the domain accepts no mail.
        NullMx => "null_mx",
        /// No MX, but address records at the domain itself (RFC 5321 §5.1).
        Implicit => "implicit",
        /// NXDOMAIN, or neither MX nor address records.
        None => "none",
        /// The MX lookup failed (SERVFAIL, timeout, refused, malformed).
        Error => "error",
    }
}

vocabulary! {
    /// Domain verdict `starttls`: did the MX hosts offer STARTTLS and complete a TLS handshake.
    pub enum StarttlsVerdict {
        /// Every MX host that answered completed STARTTLS + TLS.
        All => "all",
        /// Some, not all.
        Some => "some",
        /// MX hosts answered but none completed STARTTLS + TLS.
        None => "none",
        /// No MX host answered SMTP at all.
        Unreachable => "unreachable",
        /// No mail hosts to probe (null MX, no MX, DNS error).
        NotApplicable => "n/a",
    }
}

vocabulary! {
    /// Domain verdict `pkix`: over the MX hosts that completed TLS, does the certificate chain to a
    /// trusted root and match the MX host name.
    pub enum PkixVerdict {
        /// Every MX host that completed TLS presented a PKIX-valid certificate for its name.
        All => "all",
        /// Some, not all.
        Some => "some",
        /// None did.
        None => "none",
        /// No MX host completed TLS.
        NotApplicable => "n/a",
    }
}

vocabulary! {
    /// DANE (RFC 7672) verdict, per probe and aggregated per domain.
    ///
    /// Per domain the aggregate is the worst over MX hosts, in the order of
    /// [`DaneVerdict::severity`]: bogus > no_tls > mismatch > unusable > partial > valid.
    pub enum DaneVerdict {
        /// No TLSA records.
        None => "none",
        /// TLSA records exist but are not DNSSEC-secure (the TLSA RRset or the MX/address records
        /// leading to it are unsigned), so they must be ignored (RFC 7672 §2.2).
        Insecure => "insecure",
        /// DNSSEC validation of the TLSA (or the records leading to it) failed.
        Bogus => "bogus",
        /// Every MX has a secure usable TLSA RRset that matched.
        Valid => "valid",
        /// Domain only: some MX hosts valid, others without TLSA.
        Partial => "partial",
        /// Secure usable TLSA, but no record matched the presented chain.
        Mismatch => "mismatch",
        /// Secure TLSA but no STARTTLS / no completed TLS: a downgrade a DANE sender refuses.
        NoTls => "no_tls",
        /// Secure TLSA, but none of its records is usable for SMTP (e.g. only PKIX-TA/PKIX-EE,
        /// unknown selector or matching type).
        Unusable => "unusable",
        /// Secure usable TLSA, but no host with it could be checked: no probe of it reached
        /// EHLO (refused, timed out, tarpitted, 4xx/5xx greeting). Never a downgrade, never
        /// `valid` for a host nobody checked.
        Unverified => "unverified",
    }
}

impl DnsOutcome {
    /// A failure that a second attempt later may not repeat (a timeout, a SERVFAIL that is not
    /// a validation failure): worth retrying before it is written as the result.
    pub const fn is_transient(self) -> bool {
        matches!(self, DnsOutcome::Timeout | DnsOutcome::ServFail)
    }
}

impl DaneVerdict {
    /// Rank for aggregation over MX hosts: higher is worse. `none` and `insecure` rank lowest
    /// because they are the absence of DANE rather than a failure of it; `unverified` (nobody
    /// could check) ranks below every result that was checked.
    pub const fn severity(self) -> u8 {
        match self {
            DaneVerdict::None => 0,
            DaneVerdict::Insecure => 1,
            DaneVerdict::Unverified => 2,
            DaneVerdict::Valid => 3,
            DaneVerdict::Partial => 4,
            DaneVerdict::Unusable => 5,
            DaneVerdict::Mismatch => 6,
            DaneVerdict::NoTls => 7,
            DaneVerdict::Bogus => 8,
        }
    }
}

vocabulary! {
    /// Domain verdict `mta_sts` (RFC 8461).
    pub enum MtaStsStatus {
        /// No `_mta-sts` TXT record starting with `v=STSv1`.
        None => "none",
        /// The `_mta-sts` TXT lookup itself failed (SERVFAIL, timeout): not the same as none.
        LookupError => "lookup_error",
        /// TXT present but unusable: not exactly one `v=STSv1` record, or a syntax error.
        TxtInvalid => "txt_invalid",
        /// The HTTPS policy fetch failed; the class is in `mta_sts_error`.
        FetchError => "fetch_error",
        /// The policy was fetched but does not parse as a valid STSv1 policy.
        PolicyInvalid => "policy_invalid",
        /// Valid policy, `mode: enforce`.
        Enforce => "enforce",
        /// Valid policy, `mode: testing`.
        Testing => "testing",
        /// Valid policy, `mode: none`.
        ModeNone => "mode_none",
    }
}

vocabulary! {
    /// Class of an MTA-STS policy fetch failure (`mta_sts_error`).
    pub enum MtaStsError {
        /// `mta-sts.<domain>` did not resolve.
        Dns => "dns",
        /// TCP connect to port 443 failed.
        Connect => "connect",
        /// The TLS handshake failed (not a certificate problem).
        Tls => "tls",
        /// The certificate is not PKIX-valid for `mta-sts.<domain>`.
        Cert => "cert",
        /// A received HTTP status other than 200 (and not a redirect).
        HttpStatus => "http_status",
        /// No usable HTTP/1.1 response after TLS: the peer closed without one, sent something
        /// that is not HTTP/1.1, a response head over the parser's size limit, or a body cut
        /// short. Not `http_status`: no status was received (or the body never completed).
        HttpProtocol => "http_protocol",
        /// A 3xx redirect: RFC 8461 §3.3 forbids following it.
        Redirect => "redirect",
        /// Media type is not `text/plain`.
        ContentType => "content_type",
        /// Body larger than the 64 KiB cap.
        TooLarge => "too_large",
        /// The fetch did not finish in time.
        Timeout => "timeout",
    }
}

vocabulary! {
    /// The `mode` of a parsed MTA-STS policy.
    pub enum MtaStsMode {
        /// Senders must not deliver without validated TLS to a matching MX.
        Enforce => "enforce",
        /// Senders report failures but deliver anyway.
        Testing => "testing",
        /// The domain withdraws its policy.
        None => "none",
    }
}

vocabulary! {
    /// RFC 8460 §4.3 result types: what a sender would put in a TLS report.
    pub enum TlsRptResult {
        StarttlsNotSupported => "starttls-not-supported",
        CertificateHostMismatch => "certificate-host-mismatch",
        CertificateExpired => "certificate-expired",
        CertificateNotTrusted => "certificate-not-trusted",
        ValidationFailure => "validation-failure",
        TlsaInvalid => "tlsa-invalid",
        DnssecInvalid => "dnssec-invalid",
        DaneRequired => "dane-required",
        StsPolicyFetchError => "sts-policy-fetch-error",
        StsPolicyInvalid => "sts-policy-invalid",
        StsWebpkiInvalid => "sts-webpki-invalid",
    }
}

vocabulary! {
    /// Evidence that STARTTLS was removed or broken on the path (STRIPTLS).
    pub enum StrippingSignal {
        /// An EHLO keyword that is a masked STARTTLS (Cisco-style `XXXXXXXA`, `XXXXXXXX`, ...).
        StarttlsMangled => "starttls_mangled",
        /// The greeting or EHLO text is masked with `*` or `X`.
        BannerMasked => "banner_masked",
        /// STARTTLS advertised, then the command refused.
        StarttlsRejected => "starttls_rejected",
        /// `220 Ready to start TLS`, then the handshake was broken.
        TlsFailedAfterReady => "tls_failed_after_ready",
        /// No STARTTLS although secure TLSA or an enforce MTA-STS policy says TLS is required.
        MissingDespitePolicy => "missing_despite_policy",
        /// STARTTLS was not advertised, was sent anyway, was accepted (`220`) and the TLS
        /// handshake completed: the server speaks TLS, so the EHLO reply was rewritten on the
        /// path.
        StarttlsForcedOk => "starttls_forced_ok",
        /// Analysis: one vantage sees STARTTLS (or a certificate) on an IP, another does not.
        VantageDisagreement => "vantage_disagreement",
        /// Analysis: an IP that offered STARTTLS in earlier scans from a vantage no longer does.
        HistoryRegression => "history_regression",
    }
}

impl StrippingSignal {
    /// Whether the signal is evidence of an on-path change (DESIGN.md "`stripping_suspected`"),
    /// as opposed to a weak signal that a server's own failure produces just as well.
    ///
    /// Evidence: a masked STARTTLS keyword with STARTTLS itself absent (detection only emits
    /// it then), an ASA/PIX-style masked banner, STARTTLS accepted and TLS completed although
    /// the EHLO reply did not offer it, and the cross-vantage/over-time findings of the
    /// analysis across vantages. Weak: STARTTLS refused after being advertised, TLS failing
    /// after `220`, STARTTLS missing although a policy requires it, and a history regression
    /// (all are what a broken, overloaded or reconfigured server does too).
    pub const fn is_evidence(self) -> bool {
        match self {
            StrippingSignal::StarttlsMangled
            | StrippingSignal::BannerMasked
            | StrippingSignal::StarttlsForcedOk
            | StrippingSignal::VantageDisagreement => true,
            StrippingSignal::HistoryRegression
            | StrippingSignal::StarttlsRejected
            | StrippingSignal::TlsFailedAfterReady
            | StrippingSignal::MissingDespitePolicy => false,
        }
    }
}

vocabulary! {
    /// Outcome of one DNS lookup: the response code, or the transport failure instead of one.
    pub enum DnsOutcome {
        /// NOERROR with records of the asked type.
        NoError => "noerror",
        /// NOERROR without records of the asked type.
        NoData => "nodata",
        /// NXDOMAIN.
        NxDomain => "nxdomain",
        /// SERVFAIL (a validating resolver also says this for bogus answers).
        ServFail => "servfail",
        /// REFUSED.
        Refused => "refused",
        /// No answer within the timeout, after the retries.
        Timeout => "timeout",
        /// Truncated over UDP and the TCP retry failed too.
        Truncated => "truncated",
        /// The answer could not be parsed or did not belong to the query.
        Malformed => "malformed",
        /// Any other rcode or local failure (details in the record's errors).
        Other => "other",
        /// Not looked up (e.g. no TLSA query for a host without addresses).
        NotQueried => "not_queried",
    }
}

vocabulary! {
    /// How one SMTP probe ended, in one word.
    pub enum ProbeResult {
        /// STARTTLS offered, accepted, and the TLS handshake completed.
        StarttlsOk => "starttls_ok",
        /// The SMTP session worked but STARTTLS was not offered.
        NoStarttls => "no_starttls",
        /// Anything else; the cause is in `error_class`.
        Error => "error",
    }
}

vocabulary! {
    /// Why an SMTP probe did not complete STARTTLS: one class for every way a probe can end.
    pub enum ProbeErrorClass {
        /// The destination is reserved/private and `--allow-private` was not given: no packet sent.
        BlockedReserved => "blocked_reserved",
        /// The destination is in `--blocklist`: no packet sent.
        BlockedList => "blocked_list",
        /// TCP RST on connect.
        ConnectRefused => "connect_refused",
        /// No TCP handshake within the connect timeout.
        ConnectTimeout => "connect_timeout",
        /// Network/host unreachable (ICMP or no route).
        ConnectUnreachable => "connect_unreachable",
        /// Any other connect failure (e.g. source address not available).
        ConnectError => "connect_error",
        /// `--source-ip` was given, but none of the destination's address family (an IPv6
        /// destination with only an IPv4 source, or the reverse): no packet sent.
        NoSourceAddress => "no_source_address",
        /// Connected, but no greeting in time.
        GreetingTimeout => "greeting_timeout",
        /// Greeting with a 4xx code.
        Greeting4xx => "greeting_4xx",
        /// Greeting with a 5xx code (e.g. 554 refusal).
        Greeting5xx => "greeting_5xx",
        /// Both EHLO and HELO refused.
        EhloRejected => "ehlo_rejected",
        /// EHLO (or HELO) answered `421`: the server is busy or shutting down. Transient: the
        /// server may well accept a later session, so it is never "refused".
        Busy => "busy",
        /// STARTTLS answered with 4xx (e.g. 454 TLS not available).
        Starttls4xx => "starttls_4xx",
        /// STARTTLS answered with 5xx.
        Starttls5xx => "starttls_5xx",
        /// The server sent a TLS alert during the handshake (code in `tls_alert`).
        TlsAlert => "tls_alert",
        /// No shared protocol version or cipher suite. mxray speaks TLS 1.2 and 1.3 only, so a
        /// server that offers only TLS 1.0/1.1 lands here: it has TLS, just not one we speak.
        TlsIncompatible => "tls_incompatible",
        /// The connection was reset or closed during the handshake.
        TlsReset => "tls_reset",
        /// The handshake did not finish in time.
        TlsTimeout => "tls_timeout",
        /// A TLS message larger than mxray's TLS engine accepts (a certificate message over
        /// 64 KiB, an oversized record): mxray's limit, never a stripping signal.
        TlsTooLarge => "tls_too_large",
        /// Any other handshake failure (garbage instead of TLS records, ...).
        TlsError => "tls_error",
        /// TLS completed, then the EHLO after TLS failed.
        PostTlsError => "post_tls_error",
        /// A reply did not arrive in time (other than the greeting).
        ReadTimeout => "read_timeout",
        /// The whole session exceeded its deadline (tarpit).
        SessionDeadline => "session_deadline",
        /// The peer closed or reset the connection before the dialogue finished, a reset right
        /// after accepting included (it may land in the connect or the first read).
        ConnectionClosed => "connection_closed",
        /// A reply line or reply exceeded the caps.
        ReplyTooLong => "reply_too_long",
        /// A reply that is not SMTP (bad code, binary garbage, inconsistent multi-line).
        ProtocolError => "protocol_error",
    }
}

vocabulary! {
    /// Why a certificate chain is not PKIX-valid for the name that was checked.
    pub enum PkixError {
        Expired => "expired",
        NotYetValid => "not_yet_valid",
        /// The chain does not lead to a trusted root (incl. self-signed leaf).
        UnknownIssuer => "unknown_issuer",
        SelfSigned => "self_signed",
        /// Valid chain, but the certificate is not for the host name.
        NameMismatch => "name_mismatch",
        BadSignature => "bad_signature",
        /// Not a usable server certificate (bad encoding, wrong key usage, ...).
        BadCertificate => "bad_certificate",
        /// The chain is longer, or costs more signature checks, than the verifier allows.
        PathTooLong => "path_too_long",
        Other => "other",
        /// A certificate of the chain carries a key that current senders refuse: RSA shorter
        /// than 2048 bits, or DSA (CA/Browser Forum Baseline Requirements §6.1.5; OpenSSL's
        /// default security level and rustls reject them).
        WeakKey => "weak_key",
        /// A certificate of the chain (not a root's own self-signature) is signed with SHA-1 or
        /// MD5, which webpki, rustls and current OpenSSL refuse.
        WeakSignature => "weak_signature",
    }
}

impl ProbeErrorClass {
    /// A class a second probe later may not repeat: timeouts, `busy`, a 4xx greeting, a
    /// session cut short. Refusals, TLS failures and everything the server said are not.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ProbeErrorClass::ConnectTimeout
                | ProbeErrorClass::GreetingTimeout
                | ProbeErrorClass::Greeting4xx
                | ProbeErrorClass::Busy
                | ProbeErrorClass::ReadTimeout
                | ProbeErrorClass::TlsTimeout
                | ProbeErrorClass::SessionDeadline
        )
    }
}

impl PkixError {
    /// The RFC 8460 §4.3 result type a sender reports for this certificate failure.
    pub const fn tlsrpt_result(self) -> TlsRptResult {
        match self {
            PkixError::Expired | PkixError::NotYetValid => TlsRptResult::CertificateExpired,
            PkixError::NameMismatch => TlsRptResult::CertificateHostMismatch,
            PkixError::UnknownIssuer | PkixError::SelfSigned => TlsRptResult::CertificateNotTrusted,
            PkixError::BadSignature
            | PkixError::BadCertificate
            | PkixError::PathTooLong
            | PkixError::Other
            | PkixError::WeakKey
            | PkixError::WeakSignature => TlsRptResult::ValidationFailure,
        }
    }
}

vocabulary! {
    /// The TLS implementation that produced a probe's TLS fields (`tls_engine`).
    pub enum TlsEngine {
        /// rustls (TLS 1.2 and 1.3, ECDHE + AEAD only): the first choice for every probe.
        Rustls => "rustls",
        /// OpenSSL (the system libssl, security level 0, TLS 1.0 to 1.3, every cipher): only
        /// in a second session after rustls failed for a reason OpenSSL can overcome
        /// (`tls_fallback_reason`).
        Openssl => "openssl",
    }
}

vocabulary! {
    /// Why a probe's rustls handshake was retried with OpenSSL (`tls_fallback_reason`): a
    /// limit of rustls, never a fault of the server or the path.
    pub enum TlsFallbackReason {
        /// The server answered the ClientHello with alert 70 `protocol_version`: it speaks
        /// no TLS version rustls offers (1.2, 1.3).
        ProtocolVersion => "protocol_version",
        /// The server answered with alert 40 `handshake_failure`: no cipher suite, group or
        /// signature algorithm in common.
        HandshakeFailure => "handshake_failure",
        /// The server answered with alert 71 `insufficient_security`.
        InsufficientSecurity => "insufficient_security",
        /// rustls itself found no common version, cipher suite or group in the server's reply.
        PeerIncompatible => "peer_incompatible",
        /// rustls could not verify the handshake signature with the server's key or
        /// certificate (RSA under 2048 bits, DSA, an X.509 v1 certificate, ...).
        CertificateKey => "certificate_key",
        /// The server signed the handshake with a scheme rustls does not offer (SHA-1).
        SignatureScheme => "signature_scheme",
    }
}

vocabulary! {
    /// Lifecycle of a scan.
    pub enum ScanStatus {
        Running => "running",
        Complete => "complete",
        /// Stopped by a signal; `--resume` can finish it.
        Interrupted => "interrupted",
    }
}

vocabulary! {
    /// Vantage self-check of outbound port 25 before a scan (see the stripping docs).
    pub enum Port25Check {
        /// The self-check was not run.
        NotChecked => "not_checked",
        /// The control target answered on port 25 with the expected greeting.
        Open => "open",
        /// Outbound port 25 is blocked (refused/timeout to the control target): results from this
        /// vantage must not be read as "no STARTTLS".
        Blocked => "blocked",
        /// Something answered but not as the control target does: an interception proxy.
        Intercepted => "intercepted",
    }
}

vocabulary! {
    /// The verdict of one canary probe (`mxray canary probe`, docs/stripping.md): did the path
    /// between the vantage and a canary we run change any byte of the session?
    pub enum CanaryVerdict {
        /// Every byte in both directions and the certificate were exactly the canary's.
        Clean => "clean",
        /// Some byte differed or was added, a different certificate was shown, the TLS
        /// handshake failed after the canary's `220`, or an answer of the canary's control
        /// endpoint failed authentication: the path rewrote the session (or its control
        /// channel).
        Tampered => "tampered",
        /// No SMTP session at all (connect refused, timed out or unreachable, or accepted and
        /// then silent): outbound SMTP is filtered. Never read this as "no STARTTLS".
        Blocked => "blocked",
        /// The session stopped early with nothing rewritten before the stop (timeout, reset), or
        /// mxray's own destination policy refused the target.
        Error => "error",
    }
}

vocabulary! {
    /// The record type tag of a JSON line (`"record": "..."`), one per table.
    pub enum RecordKind {
        Scan => "scan",
        Domain => "domain",
        DnsHost => "dns_host",
        SmtpProbe => "smtp_probe",
        Certificate => "certificate",
        MtaStsPolicy => "mta_sts_policy",
        CanaryResult => "canary_result",
    }
}

impl RecordKind {
    /// The ClickHouse table (and Parquet file stem) for this record type: DESIGN.md's plural.
    pub const fn table(self) -> &'static str {
        match self {
            RecordKind::Scan => "scans",
            RecordKind::Domain => "domains",
            RecordKind::DnsHost => "dns_hosts",
            RecordKind::SmtpProbe => "smtp_probes",
            RecordKind::Certificate => "certificates",
            RecordKind::MtaStsPolicy => "mta_sts_policies",
            RecordKind::CanaryResult => "canary_results",
        }
    }
}
