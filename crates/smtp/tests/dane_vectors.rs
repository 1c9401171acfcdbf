//! DANE matching for usages 2 and 3, case by case after OpenSSL's DANE test vectors
//! (`test/danetest.in`): a Root CA -> Issuer CA -> `example.com` chain, DANE-EE at depth 0,
//! DANE-TA at depth 1 and 2, trust anchors given in DNS and not presented, anonymous and
//! never-valid leaves, name checks. The certificates are generated here (rcgen) rather than
//! copied, so each case states the property it checks; the numbers in comments are the
//! danetest.in cases it mirrors.

use mxray_model::{DaneVerdict, DnssecStatus, TlsaRecord};
use mxray_smtp::dane::{verify_at, Session, TlsaInput};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256, Sha512};
use time::{Duration, OffsetDateTime};

struct Ca {
    der: CertificateDer<'static>,
    spki: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(cn: &str, parent: Option<&Ca>, expired: bool) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    (p.not_before, p.not_after) = if expired {
        (now - Duration::days(60), now - Duration::days(30))
    } else {
        (now - Duration::days(1), now + Duration::days(3650))
    };
    let cert = match parent {
        Some(parent) => p.signed_by(&key, &parent.issuer).expect("sign"),
        None => p.self_signed(&key).expect("self-sign"),
    };
    Ca {
        der: cert.der().clone(),
        spki: key.subject_public_key_info(),
        issuer: Issuer::new(p, key),
    }
}

struct Leaf {
    sans: Vec<String>,
    cn: Option<String>,
    expired: bool,
}

impl Leaf {
    fn named(name: &str) -> Self {
        Leaf {
            sans: vec![name.into()],
            cn: None,
            expired: false,
        }
    }
}

fn leaf(spec: Leaf, by: &Ca) -> (CertificateDer<'static>, Vec<u8>) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(spec.sans).expect("params");
    let mut dn = DistinguishedName::new();
    if let Some(cn) = spec.cn {
        dn.push(DnType::CommonName, cn);
    }
    p.distinguished_name = dn;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    (p.not_before, p.not_after) = if spec.expired {
        (now - Duration::days(60), now - Duration::days(30))
    } else {
        (now - Duration::days(1), now + Duration::days(365))
    };
    let cert = p.signed_by(&key, &by.issuer).expect("sign");
    (cert.der().clone(), key.subject_public_key_info())
}

fn rec(usage: u8, selector: u8, mtype: u8, selected: &[u8]) -> TlsaRecord {
    let data = match mtype {
        0 => selected.to_vec(),
        1 => Sha256::digest(selected).to_vec(),
        _ => Sha512::digest(selected).to_vec(),
    };
    TlsaRecord {
        usage,
        selector,
        matching_type: mtype,
        data: hex::encode(data),
    }
}

fn check(chain: &[CertificateDer<'static>], records: Vec<TlsaRecord>) -> DaneVerdict {
    let tlsa = TlsaInput {
        records,
        dnssec: DnssecStatus::Secure,
        base_names: vec!["example.com".into()],
    };
    verify_at(Session::Tls(chain), &tlsa, UnixTime::now()).verdict
}

struct Pki {
    root: Ca,
    issuer: Ca,
    leaf: CertificateDer<'static>,
    leaf_spki: Vec<u8>,
}

fn pki() -> Pki {
    let root = ca("Root CA", None, false);
    let issuer = ca("Issuer CA", Some(&root), false);
    let (leaf, leaf_spki) = leaf(Leaf::named("example.com"), &issuer);
    Pki {
        root,
        issuer,
        leaf,
        leaf_spki,
    }
}

#[test]
fn dane_ee_ignores_names_and_dates_danetest_1_to_8() {
    let p = pki();
    let (expired, spki) = leaf(
        Leaf {
            sans: vec![],
            cn: None,
            expired: true,
        },
        &p.issuer,
    );
    for (s, m) in [(0, 1), (1, 1), (0, 2), (1, 2), (1, 0)] {
        let sel: &[u8] = if s == 0 { expired.as_ref() } else { &spki };
        assert_eq!(
            check(std::slice::from_ref(&expired), vec![rec(3, s, m, sel)]),
            DaneVerdict::Valid,
            "3 {s} {m} on an anonymous expired leaf"
        );
        let mut wrong = rec(3, s, m, sel);
        let mut bytes = hex::decode(&wrong.data).expect("hex");
        bytes[0] ^= 1;
        wrong.data = hex::encode(bytes);
        assert_eq!(
            check(std::slice::from_ref(&expired), vec![wrong]),
            DaneVerdict::Mismatch,
            "3 {s} {m} with one wrong byte"
        );
    }
}

#[test]
fn dane_ta_at_each_depth_danetest_9_to_23() {
    let p = pki();
    let full = [p.leaf.clone(), p.issuer.der.clone(), p.root.der.clone()];
    assert_eq!(
        check(&full, vec![rec(3, 1, 1, &p.leaf_spki)]),
        DaneVerdict::Valid
    );
    for (s, m) in [(0, 1), (1, 1), (0, 2), (1, 2)] {
        let issuer_sel: &[u8] = if s == 0 {
            p.issuer.der.as_ref()
        } else {
            &p.issuer.spki
        };
        let root_sel: &[u8] = if s == 0 {
            p.root.der.as_ref()
        } else {
            &p.root.spki
        };
        assert_eq!(
            check(&full, vec![rec(2, s, m, issuer_sel)]),
            DaneVerdict::Valid,
            "2 {s} {m} on the issuer (depth 1)"
        );
        assert_eq!(
            check(&full, vec![rec(2, s, m, root_sel)]),
            DaneVerdict::Valid,
            "2 {s} {m} on the root (depth 2)"
        );
    }
    // DANE-TA never matches the leaf itself (it is not a trust anchor of its own chain).
    assert_eq!(
        check(&full, vec![rec(2, 1, 1, &p.leaf_spki)]),
        DaneVerdict::Mismatch
    );
}

#[test]
fn rfc7671_5_2_3_anchor_given_in_dns_and_not_presented() {
    let p = pki();
    let short = [p.leaf.clone(), p.issuer.der.clone()];
    // The full certificate or the full key of the root, root not sent.
    assert_eq!(
        check(&short, vec![rec(2, 0, 0, p.root.der.as_ref())]),
        DaneVerdict::Valid,
        "2 0 0"
    );
    assert_eq!(
        check(&short, vec![rec(2, 1, 0, &p.root.spki)]),
        DaneVerdict::Valid,
        "2 1 0: the top certificate is signed by that key"
    );
    // A digest of an anchor that is not sent cannot be checked.
    assert_eq!(
        check(&short, vec![rec(2, 1, 1, &p.root.spki)]),
        DaneVerdict::Mismatch
    );
    // A key that did not sign the top certificate.
    let other = ca("Root CA", None, false);
    assert_eq!(
        check(&short, vec![rec(2, 1, 0, &other.spki)]),
        DaneVerdict::Mismatch,
        "same issuer name, other key"
    );
    // Leaf only, issuer key in DNS.
    assert_eq!(
        check(
            std::slice::from_ref(&p.leaf),
            vec![rec(2, 1, 0, &p.issuer.spki)]
        ),
        DaneVerdict::Valid
    );
}

#[test]
fn rfc7672_3_2_2_dane_ta_checks_names_with_cn_fallback() {
    let p = pki();
    let ta = || vec![rec(2, 0, 1, p.issuer.der.as_ref())];
    let wrong = leaf(Leaf::named("other.example"), &p.issuer).0;
    assert_eq!(
        check(&[wrong.clone(), p.issuer.der.clone()], ta()),
        DaneVerdict::Mismatch
    );
    // DANE-EE does not look at names.
    let (wrong2, wrong2_spki) = leaf(Leaf::named("other.example"), &p.issuer);
    assert_eq!(
        check(&[wrong2], vec![rec(3, 1, 1, &wrong2_spki)]),
        DaneVerdict::Valid
    );
    // No subjectAltName: the subject CN is the name.
    let cn_only = leaf(
        Leaf {
            sans: vec![],
            cn: Some("example.com".into()),
            expired: false,
        },
        &p.issuer,
    )
    .0;
    assert_eq!(
        check(&[cn_only, p.issuer.der.clone()], ta()),
        DaneVerdict::Valid
    );
    // A DNS subjectAltName present: the CN is not consulted.
    let san_and_cn = leaf(
        Leaf {
            sans: vec!["other.example".into()],
            cn: Some("example.com".into()),
            expired: false,
        },
        &p.issuer,
    )
    .0;
    assert_eq!(
        check(&[san_and_cn, p.issuer.der.clone()], ta()),
        DaneVerdict::Mismatch
    );
    // A wildcard covers one label.
    let wild = leaf(Leaf::named("*.example.org"), &p.issuer).0;
    let tlsa = TlsaInput {
        records: ta(),
        dnssec: DnssecStatus::Secure,
        base_names: vec!["mx.example.org".into()],
    };
    assert_eq!(
        verify_at(
            Session::Tls(&[wild, p.issuer.der.clone()]),
            &tlsa,
            UnixTime::now()
        )
        .verdict,
        DaneVerdict::Valid
    );
}

#[test]
fn dane_ta_checks_dates_below_the_anchor() {
    let p = pki();
    let (expired_leaf, spki) = leaf(
        Leaf {
            sans: vec!["example.com".into()],
            cn: None,
            expired: true,
        },
        &p.issuer,
    );
    let chain = [expired_leaf, p.issuer.der.clone()];
    assert_eq!(
        check(&chain, vec![rec(2, 0, 1, p.issuer.der.as_ref())]),
        DaneVerdict::Mismatch
    );
    assert_eq!(check(&chain, vec![rec(3, 1, 1, &spki)]), DaneVerdict::Valid);
    // An expired intermediate under a DANE-TA root fails; the anchor's own dates do not count.
    let root = ca("Root CA", None, true);
    let old_issuer = ca("Issuer CA", Some(&root), true);
    let (l, _) = leaf(Leaf::named("example.com"), &old_issuer);
    assert_eq!(
        check(
            &[l.clone(), old_issuer.der.clone()],
            vec![rec(2, 0, 1, root.der.as_ref())]
        ),
        DaneVerdict::Mismatch
    );
    assert_eq!(
        check(
            &[l, old_issuer.der.clone()],
            vec![rec(2, 0, 1, old_issuer.der.as_ref())]
        ),
        DaneVerdict::Valid,
        "an expired anchor is still an anchor"
    );
}
