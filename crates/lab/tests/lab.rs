//! The lab checked from the outside: plain TCP/TLS clients (tokio + rustls) and hickory-resolver
//! with DNSSEC validation on and the lab's trust anchor. Loopback only.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use mxray_lab::{Lab, LabOptions, PortChoice};
use rustls_pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;

const T: Duration = Duration::from_secs(10);

async fn lab(n: usize) -> Lab {
    Lab::start(LabOptions {
        synthetic_domains: n,
        seed: 42,
        ports: PortChoice::High,
        ..LabOptions::default()
    })
    .await
    .expect("lab starts")
}

fn resolver_at(addr: SocketAddr, anchor: Option<&str>) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
    let cfg = ResolverConfig::from_name_servers(vec![ns]);
    let mut b = TokioResolver::builder_with_config(cfg, TokioRuntimeProvider::default());
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(5);
    opts.cache_size = 0;
    if let Some(a) = anchor {
        opts.validate = true;
        b = b.with_trust_anchor(Arc::new(TrustAnchors::from_str(a).expect("anchor parses")));
    }
    *b.options_mut() = opts;
    b.build().expect("resolver")
}

fn validating(lab: &Lab) -> TokioResolver {
    resolver_at(lab.resolver(), Some(&lab.trust_anchor_text()))
}

async fn ip_of(lab: &Lab, host: &str) -> IpAddr {
    let r = resolver_at(lab.resolver(), None);
    let l = r
        .lookup(format!("{host}."), RecordType::A)
        .await
        .expect("A lookup");
    l.answers()
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .expect("an A record")
}

/// Proof of the records of `rtype` in the answer, or the error text.
async fn proof(r: &TokioResolver, name: &str, rtype: RecordType) -> Result<Proof, String> {
    match r.lookup(format!("{name}."), rtype).await {
        Ok(l) => {
            let proofs: Vec<Proof> = l
                .answers()
                .iter()
                .filter(|x| x.record_type() == rtype)
                .map(|x| x.proof)
                .collect();
            assert!(!proofs.is_empty(), "{name} {rtype}: no records");
            assert!(
                proofs.iter().all(|p| *p == proofs[0]),
                "{name}: mixed proofs {proofs:?}"
            );
            Ok(proofs[0])
        }
        Err(e) => Err(format!("{e:?}")),
    }
}

// ---------------------------------------------------------------- DNS

#[tokio::test]
async fn signed_apex_validates_with_the_lab_trust_anchor() {
    let lab = lab(0).await;
    let r = validating(&lab);
    assert_eq!(
        proof(&r, "good.lab.test", RecordType::MX).await,
        Ok(Proof::Secure)
    );
    assert_eq!(
        proof(&r, "mx.good.lab.test", RecordType::A).await,
        Ok(Proof::Secure)
    );
    assert_eq!(
        proof(&r, "_25._tcp.mx.good.lab.test", RecordType::TLSA).await,
        Ok(Proof::Secure)
    );
    assert_eq!(
        proof(&r, "_mta-sts.good.lab.test", RecordType::TXT).await,
        Ok(Proof::Secure)
    );
    // A CNAME'd MX host resolves, securely, through the chain.
    assert_eq!(
        proof(&r, "mx.mx-cname.lab.test", RecordType::A).await,
        Ok(Proof::Secure)
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn a_wrong_trust_anchor_makes_everything_bogus() {
    let first = lab(0).await;
    let other = lab(0).await;
    let lab = first;
    let r = resolver_at(lab.resolver(), Some(&other.trust_anchor_text()));
    let p = proof(&r, "good.lab.test", RecordType::MX).await;
    assert!(
        matches!(p, Ok(Proof::Bogus) | Err(_)),
        "validated with a foreign anchor: {p:?}"
    );
    lab.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn secure_nodata_is_a_plain_no_records_answer() {
    let lab = lab(0).await;
    let r = validating(&lab);
    for (name, t) in [
        ("_mta-sts.no-starttls.lab.test", RecordType::TXT),
        ("_25._tcp.mx.no-starttls.lab.test", RecordType::TLSA),
        ("mx.mx-no-address.lab.test", RecordType::A),
        ("mx.good.lab.test", RecordType::AAAA),
    ] {
        let e = r
            .lookup(format!("{name}."), t)
            .await
            .expect_err("no records");
        let NetError::Dns(DnsError::NoRecordsFound(nr)) = &e else {
            panic!("{name} {t}: {e:?}")
        };
        let auth = nr.authorities.as_deref().unwrap_or(&[]);
        // The denial itself validated: SOA and the NSEC at the name, both secure.
        assert!(
            auth.iter().any(|r| r.record_type() == RecordType::NSEC
                && r.name == Name::from_ascii(format!("{name}.")).expect("name")),
            "{name}: {auth:?}"
        );
        assert!(
            auth.iter().all(|r| r.proof == Proof::Secure),
            "{name}: {auth:?}"
        );
    }
    lab.shutdown().await;
}

#[tokio::test]
async fn unsigned_child_is_provably_insecure() {
    let lab = lab(0).await;
    let r = validating(&lab);
    assert_eq!(
        proof(&r, "insecure.lab.test", RecordType::MX).await,
        Ok(Proof::Insecure)
    );
    assert_eq!(
        proof(&r, "mx.insecure.lab.test", RecordType::A).await,
        Ok(Proof::Insecure)
    );
    assert_eq!(
        proof(&r, "_25._tcp.mx.insecure.lab.test", RecordType::TLSA).await,
        Ok(Proof::Insecure)
    );
    // Negative answers from the unsigned child are accepted as insecure, not bogus.
    let e = r
        .lookup("_mta-sts.insecure.lab.test.", RecordType::TXT)
        .await
        .expect_err("none");
    assert!(e.is_nx_domain(), "{e:?}");
    lab.shutdown().await;
}

#[tokio::test]
async fn bogus_child_fails_validation_for_tlsa_only() {
    let lab = lab(0).await;
    let r = validating(&lab);
    assert_eq!(
        proof(&r, "bogus.lab.test", RecordType::MX).await,
        Ok(Proof::Secure)
    );
    assert_eq!(
        proof(&r, "mx.bogus.lab.test", RecordType::A).await,
        Ok(Proof::Secure)
    );
    let t = proof(&r, "_25._tcp.mx.bogus.lab.test", RecordType::TLSA).await;
    assert!(
        matches!(t, Ok(Proof::Bogus) | Err(_)),
        "TLSA must not validate: {t:?}"
    );
    // Without validation the (corrupt) data is there.
    let plain = resolver_at(lab.resolver(), None);
    let l = plain
        .lookup("_25._tcp.mx.bogus.lab.test.", RecordType::TLSA)
        .await
        .expect("raw TLSA");
    assert!(l
        .answers()
        .iter()
        .any(|r| r.record_type() == RecordType::TLSA));
    lab.shutdown().await;
}

#[tokio::test]
async fn synthetic_zones_signed_and_unsigned() {
    let lab = lab(400).await;
    let r = validating(&lab);
    let dane = lab
        .expected()
        .iter()
        .find(|e| e.case == "synthetic:dane")
        .expect("a dane domain");
    let host = &dane.clean.mx_hosts[0];
    assert_eq!(
        proof(&r, &dane.domain, RecordType::MX).await,
        Ok(Proof::Secure)
    );
    assert_eq!(
        proof(&r, &format!("_25._tcp.{host}"), RecordType::TLSA).await,
        Ok(Proof::Secure)
    );
    let plain = lab
        .expected()
        .iter()
        .find(|e| e.case == "synthetic:shared-mx")
        .expect("shared");
    assert_eq!(
        proof(&r, &plain.domain, RecordType::MX).await,
        Ok(Proof::Insecure)
    );
    let null = lab
        .expected()
        .iter()
        .find(|e| e.case == "synthetic:null-mx")
        .expect("null mx");
    let l = r
        .lookup(format!("{}.", null.domain), RecordType::MX)
        .await
        .expect("null MX");
    assert!(l
        .answers()
        .iter()
        .any(|x| matches!(&x.data, RData::MX(m) if m.exchange.is_root())));
    lab.shutdown().await;
}

async fn raw_query(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let mut m = Message::query();
    m.add_query(Query::query(
        Name::from_ascii(format!("{name}.")).expect("name"),
        t,
    ));
    m.metadata.recursion_desired = true;
    m.metadata.authentic_data = true;
    let mut e = Edns::new();
    e.enable_dnssec();
    m.set_edns(e);
    sock.send_to(&m.to_vec().expect("encode"), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(T, sock.recv_from(&mut buf))
        .await
        .expect("answer")
        .expect("recv");
    Message::from_vec(&buf[..n]).expect("decode")
}

#[tokio::test]
async fn ad_resolver_sets_ad_and_servfails_bogus() {
    let lab = lab(0).await;
    let ad = lab.ad_resolver();
    let m = raw_query(ad, "_25._tcp.mx.good.lab.test", RecordType::TLSA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authentic_data);
    let m = raw_query(ad, "_25._tcp.mx.insecure.lab.test", RecordType::TLSA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authentic_data);
    assert!(!m.answers.is_empty());
    let m = raw_query(ad, "_25._tcp.mx.bogus.lab.test", RecordType::TLSA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // The authoritative server refuses names outside the lab: never a recursive resolver.
    let m = raw_query(lab.resolver(), "example.com", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    lab.shutdown().await;
}

// ---------------------------------------------------------------- SMTP

struct Smtp {
    r: BufReader<TcpStream>,
}

impl Smtp {
    async fn connect(lab: &Lab, host: &str, source: Option<IpAddr>) -> Smtp {
        let ip = ip_of(lab, host).await;
        let sock = TcpSocket::new_v4().expect("socket");
        if let Some(src) = source {
            sock.bind(SocketAddr::new(src, 0)).expect("bind source");
        }
        let s = tokio::time::timeout(T, sock.connect(SocketAddr::new(ip, lab.smtp_port())))
            .await
            .expect("connect in time")
            .expect("connect");
        Smtp {
            r: BufReader::new(s),
        }
    }

    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(T, self.r.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "closed before a reply; got {all:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn cmd(&mut self, c: &str) -> String {
        self.r
            .get_mut()
            .write_all(format!("{c}\r\n").as_bytes())
            .await
            .expect("write");
        self.reply().await
    }
}

fn tls_client(lab: &Lab) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = lab.ca_pem();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = decode_b64(&b64);
    roots.add(CertificateDer::from(der)).expect("CA");
    let cfg = mxray_net::tls::client_config(mxray_net::tls::ServerAuth::Roots(roots))
        .expect("client config");
    TlsConnector::from(Arc::new(cfg))
}

fn decode_b64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|x| *x == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// EHLO, STARTTLS, handshake with SNI `host`; the rustls error if verification fails.
async fn starttls(lab: &Lab, host: &str) -> Result<Vec<CertificateDer<'static>>, rustls::Error> {
    let mut s = Smtp::connect(lab, host, None).await;
    assert!(s.reply().await.starts_with("220 "));
    assert!(s
        .cmd("EHLO scanner.lab.test")
        .await
        .contains("250-STARTTLS"));
    assert!(s.cmd("STARTTLS").await.starts_with("220 "));
    let name = ServerName::try_from(host.to_owned()).expect("name");
    match tls_client(lab).connect(name, s.r.into_inner()).await {
        Ok(tls) => {
            let chain = tls.get_ref().1.peer_certificates().expect("chain").to_vec();
            let mut tls = BufReader::new(tls);
            tls.get_mut()
                .write_all(b"EHLO scanner.lab.test\r\n")
                .await
                .expect("write");
            let mut ehlo = String::new();
            loop {
                let mut line = String::new();
                tls.read_line(&mut line).await.expect("read");
                ehlo.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
            assert!(
                ehlo.starts_with("250-") && !ehlo.contains("STARTTLS"),
                "{ehlo}"
            );
            Ok(chain)
        }
        Err(e) => Err(e
            .get_ref()
            .and_then(|x| x.downcast_ref::<rustls::Error>())
            .cloned()
            .unwrap_or(rustls::Error::General(e.to_string()))),
    }
}

#[tokio::test]
async fn good_host_does_starttls_with_a_dane_ee_matching_certificate() {
    let lab = lab(0).await;
    let chain = starttls(&lab, "mx.good.lab.test").await.expect("valid TLS");
    let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).expect("x509");
    let spki = Sha256::digest(leaf.tbs_certificate.subject_pki.raw);
    let r = resolver_at(lab.resolver(), None);
    let l = r
        .lookup("_25._tcp.mx.good.lab.test.", RecordType::TLSA)
        .await
        .expect("TLSA");
    let data = l
        .answers()
        .iter()
        .find_map(|x| match &x.data {
            RData::TLSA(t) => Some(t.cert_data.clone()),
            _ => None,
        })
        .expect("TLSA data");
    assert_eq!(data, spki.to_vec());
    // DANE-TA: the CA certificate is in the chain and matches 2 0 1.
    let chain = starttls(&lab, "mx.dane-ta.lab.test")
        .await
        .expect("valid TLS");
    assert_eq!(chain.len(), 2);
    let l = r
        .lookup("_25._tcp.mx.dane-ta.lab.test.", RecordType::TLSA)
        .await
        .expect("TLSA");
    let data = l.answers().iter().find_map(|x| match &x.data {
        RData::TLSA(t) => Some(t.cert_data.clone()),
        _ => None,
    });
    assert_eq!(data, Some(Sha256::digest(chain[1].as_ref()).to_vec()));
    lab.shutdown().await;
}

#[tokio::test]
async fn certificate_defects_are_what_the_table_says() {
    use rustls::{CertificateError, Error};
    let lab = lab(0).await;
    let e = starttls(&lab, "mx.self-signed.lab.test")
        .await
        .expect_err("self-signed");
    assert!(
        matches!(
            e,
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{e:?}"
    );
    let e = starttls(&lab, "mx.expired.lab.test")
        .await
        .expect_err("expired");
    assert!(
        matches!(
            e,
            Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{e:?}"
    );
    let e = starttls(&lab, "mx.wrong-name.lab.test")
        .await
        .expect_err("wrong name");
    assert!(
        matches!(
            e,
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{e:?}"
    );
    starttls(&lab, "mx.mx-cname.lab.test")
        .await
        .expect("certificate names the CNAME too");
    starttls(&lab, "mx1.two-mx.lab.test")
        .await
        .expect("first MX fine");
    lab.shutdown().await;
}

#[tokio::test]
async fn starttls_failures() {
    let lab = lab(0).await;
    let mut s = Smtp::connect(&lab, "mx.no-starttls.lab.test", None).await;
    assert!(s.reply().await.starts_with("220 "));
    let ehlo = s.cmd("EHLO x").await;
    assert!(
        ehlo.starts_with("250-") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert!(s.cmd("QUIT").await.starts_with("221"));

    let mut s = Smtp::connect(&lab, "mx.starttls-454.lab.test", None).await;
    s.reply().await;
    assert!(s.cmd("EHLO x").await.contains("250-STARTTLS"));
    assert!(s.cmd("STARTTLS").await.starts_with("454 "));

    let mut s = Smtp::connect(&lab, "mx.tls-fail.lab.test", None).await;
    s.reply().await;
    assert!(s.cmd("EHLO x").await.contains("250-STARTTLS"));
    assert!(s.cmd("STARTTLS").await.starts_with("220 "));
    let name = ServerName::try_from("mx.tls-fail.lab.test").expect("name");
    assert!(tls_client(&lab)
        .connect(name, s.r.into_inner())
        .await
        .is_err());

    let mut s = Smtp::connect(&lab, "mx2.two-mx.lab.test", None).await;
    s.reply().await;
    assert!(!s.cmd("EHLO x").await.contains("STARTTLS"));
    lab.shutdown().await;
}

#[tokio::test]
async fn tarpit_says_nothing() {
    let lab = lab(0).await;
    let mut s = Smtp::connect(&lab, "mx.tarpit.lab.test", None).await;
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(2), s.r.read(&mut buf)).await;
    assert!(r.is_err(), "the tarpit sent something: {r:?}");
    lab.shutdown().await;
}

#[tokio::test]
async fn middlebox_strips_only_for_the_isp_range() {
    let lab = lab(0).await;
    let host = "mx.stripped.lab.test";
    // Clean vantage: transparent, TLS works through the proxy.
    starttls(&lab, host)
        .await
        .expect("clean vantage gets real TLS");
    // isp vantage: same server IP, STARTTLS masked both ways.
    let isp = lab.vantage_source_ip("isp");
    assert_eq!(isp, Some("127.0.99.1".parse().expect("ip")));
    let mut s = Smtp::connect(&lab, host, isp).await;
    assert!(s.reply().await.starts_with("220 "));
    let ehlo = s.cmd("EHLO scanner.lab.test").await;
    assert!(
        ehlo.contains("250-XXXXXXXA\r\n") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    let r = s.cmd("STARTTLS").await;
    assert!(r.starts_with("500 "), "server saw the masked command: {r}");
    assert_eq!(lab.vantage_source_ip("default"), None);
    lab.shutdown().await;
}

#[tokio::test]
async fn synthetic_pool_hosts_answer_by_profile() {
    let lab = lab(300).await;
    for case in [
        "synthetic:distinct-good",
        "synthetic:shared-mx",
        "synthetic:dane",
    ] {
        let Some(e) = lab.expected().iter().find(|e| e.case == case) else {
            continue;
        };
        starttls(&lab, &e.clean.mx_hosts[0])
            .await
            .unwrap_or_else(|err| panic!("{case}: {err:?}"));
    }
    if let Some(e) = lab
        .expected()
        .iter()
        .find(|e| e.case == "synthetic:distinct-no-starttls")
    {
        let mut s = Smtp::connect(&lab, &e.clean.mx_hosts[0], None).await;
        s.reply().await;
        assert!(!s.cmd("EHLO x").await.contains("STARTTLS"));
    }
    lab.shutdown().await;
}

// ---------------------------------------------------------------- HTTPS

struct HttpReply {
    status: u16,
    headers: String,
    body: String,
}

async fn fetch_policy(lab: &Lab, domain: &str) -> Result<HttpReply, rustls::Error> {
    let host = format!("mta-sts.{domain}");
    let ip = ip_of(lab, &host).await;
    let tcp = TcpStream::connect(SocketAddr::new(ip, lab.https_port()))
        .await
        .expect("connect");
    let name = ServerName::try_from(host.clone()).expect("name");
    let mut tls = match tls_client(lab).connect(name, tcp).await {
        Ok(t) => t,
        Err(e) => {
            return Err(e
                .get_ref()
                .and_then(|x| x.downcast_ref::<rustls::Error>())
                .cloned()
                .unwrap_or(rustls::Error::General(e.to_string())))
        }
    };
    let req = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    tokio::time::timeout(T, tls.read_to_string(&mut raw))
        .await
        .expect("in time")
        .ok();
    let (head, body) = raw.split_once("\r\n\r\n").expect("http reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Ok(HttpReply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

#[tokio::test]
async fn mta_sts_policies_are_served_as_specified() {
    let lab = lab(0).await;
    let r = fetch_policy(&lab, "good.lab.test").await.expect("fetch");
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("content-type: text/plain"));
    assert!(
        r.body.contains("mode: enforce") && r.body.contains("mx: mx.good.lab.test"),
        "{}",
        r.body
    );
    let r = fetch_policy(&lab, "sts-testing.lab.test")
        .await
        .expect("fetch");
    assert!(r.body.contains("mode: testing"));
    let r = fetch_policy(&lab, "sts-none.lab.test")
        .await
        .expect("fetch");
    assert!(r.body.contains("mode: none"));
    let r = fetch_policy(&lab, "sts-redirect.lab.test")
        .await
        .expect("fetch");
    assert_eq!(r.status, 301);
    assert!(r
        .headers
        .contains("location: https://mta-sts.good.lab.test/"));
    assert_eq!(
        fetch_policy(&lab, "sts-404.lab.test")
            .await
            .expect("fetch")
            .status,
        404
    );
    let r = fetch_policy(&lab, "sts-content-type.lab.test")
        .await
        .expect("fetch");
    assert!(r.headers.contains("content-type: text/html"));
    let r = fetch_policy(&lab, "sts-invalid.lab.test")
        .await
        .expect("fetch");
    assert!(r.body.contains("mode: sometimes"));
    let e = fetch_policy(&lab, "sts-bad-cert.lab.test")
        .await
        .err()
        .expect("bad certificate");
    assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
    // Two STSv1 TXT records.
    let res = resolver_at(lab.resolver(), None);
    let l = res
        .lookup("_mta-sts.sts-two-txt.lab.test.", RecordType::TXT)
        .await
        .expect("TXT");
    assert_eq!(
        l.answers()
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
            .count(),
        2
    );
    lab.shutdown().await;
}

// ---------------------------------------------------------------- the table

#[tokio::test]
async fn table_lists_every_case_once_and_the_accessors_agree() {
    let lab = lab(1000).await;
    let domains = lab.domains();
    assert_eq!(domains.len(), lab.expected().len());
    let mut sorted = domains.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), domains.len(), "duplicate domains");
    assert!(domains.iter().all(|d| d.ends_with(".lab.test")));
    assert_eq!(domains[0], "good.lab.test");
    let table = lab.list_table();
    for e in lab
        .expected()
        .iter()
        .filter(|e| !e.case.starts_with("synthetic"))
    {
        assert!(
            table.contains(&e.domain),
            "{} missing from the table",
            e.domain
        );
    }
    assert!(table.contains("1000 synthetic domains"));
    let stripped = lab.expected_for("stripped.lab.test").expect("stripped");
    assert!(!stripped.clean.stripping_suspected && stripped.isp.stripping_suspected);
    assert!(lab
        .trust_anchor_text()
        .starts_with("lab.test. 3600 IN DNSKEY 257 3 13 "));
    assert!(lab.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    // The bind-free table is the same as the running lab's (what `mxray lab --list` prints and
    // what an end-to-end test may compare against a separately started lab).
    let offline = mxray_lab::expected_postures(&LabOptions {
        synthetic_domains: 1000,
        seed: 42,
        ports: PortChoice::High,
        ..LabOptions::default()
    })
    .expect("table");
    assert_eq!(offline.as_slice(), lab.expected());
    lab.shutdown().await;
}

#[tokio::test]
async fn synthetic_mta_sts_policies_are_served_from_their_own_addresses() {
    let lab = lab(600).await;
    let mut ips = std::collections::BTreeSet::new();
    for e in lab
        .expected()
        .iter()
        .filter(|e| e.case.starts_with("synthetic:mta-sts"))
        .take(10)
    {
        let mode = if e.case.ends_with("enforce") {
            "mode: enforce"
        } else {
            "mode: testing"
        };
        let r = fetch_policy(&lab, &e.domain).await.expect("fetch");
        assert_eq!(r.status, 200, "{}", e.domain);
        assert!(r.body.contains(mode), "{}: {}", e.domain, r.body);
        assert!(
            r.body.contains(&format!("mx: {}", e.clean.mx_hosts[0])),
            "{}",
            r.body
        );
        ips.insert(ip_of(&lab, &format!("mta-sts.{}", e.domain)).await);
    }
    assert!(
        ips.len() > 1,
        "all synthetic policy hosts on one address: {ips:?}"
    );
    lab.shutdown().await;
}
