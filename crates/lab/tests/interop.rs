//! The lab checked by the reference implementations: Unbound validates the lab's DNSSEC with the
//! lab's trust anchor (secure, insecure child, bogus TLSA), and Postfix's `posttls-finger`
//! judges the lab's SMTP certificates. Loopback only; Unbound queries nothing but the lab.
//!
//! Needs the Debian packages `unbound` and `postfix` (scripts/apt-packages.d/lab.txt). Without
//! them the tests print a skip message, unless `MXRAY_REQUIRE_SERVERS=1`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use mxray_lab::{Lab, LabOptions, PortChoice};
use tokio::net::UdpSocket;

fn find(bin: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file());
    found
}

fn need(bin: &str) -> Option<PathBuf> {
    let found = find(bin);
    if found.is_none() {
        if std::env::var("MXRAY_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!("{bin} not installed and MXRAY_REQUIRE_SERVERS=1");
        }
        eprintln!("skipping: {bin} not installed (apt-get install unbound postfix)");
    }
    found
}

async fn lab() -> Lab {
    Lab::start(LabOptions {
        synthetic_domains: 200,
        seed: 9,
        ports: PortChoice::High,
        ..LabOptions::default()
    })
    .await
    .expect("lab starts")
}

/// Kills the child (which this test started) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn query(server: SocketAddr, name: &str, t: RecordType) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(format!("{name}.")).ok()?, t));
    m.metadata.recursion_desired = true;
    let mut e = Edns::new();
    e.enable_dnssec();
    m.set_edns(e);
    sock.send_to(&m.to_vec().ok()?, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

#[tokio::test]
async fn unbound_validates_the_lab_like_hickory_does() {
    let Some(unbound) = need("unbound") else {
        return;
    };
    let lab = lab().await;
    let dir = tempfile_dir("unbound");
    std::fs::write(dir.join("anchor"), lab.trust_anchor_text()).expect("anchor");
    let port = {
        let s = std::net::UdpSocket::bind("127.0.77.1:0").expect("free port");
        s.local_addr().expect("addr").port()
    };
    let conf = format!(
        "server:\n  interface: 127.0.77.1\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  \
         chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  \
         do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  \
         trust-anchor-file: \"{d}/anchor\"\n  module-config: \"validator iterator\"\n  \
         qname-minimisation: no\n  local-zone: \"test.\" nodefault\n\
         stub-zone:\n  name: \"lab.test\"\n  stub-addr: {ip}@{p}\n",
        d = dir.display(),
        ip = lab.resolver().ip(),
        p = lab.resolver().port(),
    );
    std::fs::write(dir.join("unbound.conf"), conf).expect("conf");
    let child = Command::new(unbound)
        .arg("-d")
        .arg("-c")
        .arg(dir.join("unbound.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start unbound");
    let _guard = Guard(child);
    let ub = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 77, 1)), port);
    let mut ready = false;
    for _ in 0..50 {
        if query(ub, "good.lab.test", RecordType::MX).await.is_some() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "unbound did not answer");

    let dane = lab
        .expected()
        .iter()
        .find(|e| e.case == "synthetic:dane")
        .expect("dane domain");
    let dane_tlsa = format!("_25._tcp.{}", dane.clean.mx_hosts[0]);
    let shared = lab
        .expected()
        .iter()
        .find(|e| e.case == "synthetic:shared-mx")
        .expect("shared");
    // (name, type, rcode, AD, has answers)
    let cases: Vec<(&str, RecordType, ResponseCode, bool, bool)> = vec![
        (
            "good.lab.test",
            RecordType::MX,
            ResponseCode::NoError,
            true,
            true,
        ),
        (
            "_25._tcp.mx.good.lab.test",
            RecordType::TLSA,
            ResponseCode::NoError,
            true,
            true,
        ),
        (
            "mx.mx-cname.lab.test",
            RecordType::A,
            ResponseCode::NoError,
            true,
            true,
        ),
        (
            "_mta-sts.no-starttls.lab.test",
            RecordType::TXT,
            ResponseCode::NoError,
            true,
            false,
        ),
        (
            "_25._tcp.mx.insecure.lab.test",
            RecordType::TLSA,
            ResponseCode::NoError,
            false,
            true,
        ),
        (
            "_mta-sts.insecure.lab.test",
            RecordType::TXT,
            ResponseCode::NXDomain,
            false,
            false,
        ),
        (
            "mx.bogus.lab.test",
            RecordType::A,
            ResponseCode::NoError,
            true,
            true,
        ),
        (
            "_25._tcp.mx.bogus.lab.test",
            RecordType::TLSA,
            ResponseCode::ServFail,
            false,
            false,
        ),
        (
            &dane_tlsa,
            RecordType::TLSA,
            ResponseCode::NoError,
            true,
            true,
        ),
        (
            &shared.domain,
            RecordType::MX,
            ResponseCode::NoError,
            false,
            true,
        ),
    ];
    for (name, t, rcode, ad, answers) in cases {
        let m = query(ub, name, t)
            .await
            .unwrap_or_else(|| panic!("{name}: no answer"));
        let have: Vec<_> = m
            .answers
            .iter()
            .filter(|r| !matches!(r.data, RData::DNSSEC(_)))
            .collect();
        assert_eq!(m.metadata.response_code, rcode, "{name} {t}");
        assert_eq!(m.metadata.authentic_data, ad, "{name} {t} AD");
        assert_eq!(!have.is_empty(), answers, "{name} {t} answers");
    }
    lab.shutdown().await;
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn tempfile_dir(what: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "mxray-lab-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).expect("tmp dir");
    TempDir(d)
}

async fn ip_of(lab: &Lab, host: &str) -> IpAddr {
    let m = query(lab.resolver(), host, RecordType::A)
        .await
        .expect("answer");
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .expect("A record")
}

#[tokio::test]
async fn posttls_finger_agrees_on_the_certificates() {
    let Some(ptf) = need("posttls-finger") else {
        return;
    };
    let lab = lab().await;
    let dir = tempfile_dir("ptf");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, lab.ca_pem()).expect("ca");
    // A private configuration: posttls-finger reads $MAIL_CONFIG/main.cf, and the machine's
    // /etc/postfix may not exist (Postfix installed without one) or say anything.
    let mail_config = dir.join("postfix");
    std::fs::create_dir_all(&mail_config).expect("mkdir");
    std::fs::write(
        mail_config.join("main.cf"),
        "compatibility_level = 3.6\ndnssec_probe =\n",
    )
    .expect("main.cf");
    for (host, verdict) in [
        ("mx.good.lab.test", "Verified TLS connection"),
        ("mx.dane-ta.lab.test", "Verified TLS connection"),
        ("mx.self-signed.lab.test", "Untrusted TLS connection"),
        ("mx.expired.lab.test", "Untrusted TLS connection"),
        ("mx.wrong-name.lab.test", "Untrusted TLS connection"),
        ("mx.stripped.lab.test", "Verified TLS connection"),
    ] {
        let ip = ip_of(&lab, host).await;
        let dest = format!("[{ip}]:{}", lab.smtp_port());
        let ptf = ptf.clone();
        let ca = ca.clone();
        let host_s = host.to_owned();
        let mail_config = mail_config.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(ptf)
                .env("MAIL_CONFIG", &mail_config)
                .args(["-c", "-l", "secure", "-F"])
                .arg(&ca)
                .arg(&dest)
                .arg(&host_s)
                .output()
        })
        .await
        .expect("join")
        .expect("run posttls-finger");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(verdict),
            "{host}: want {verdict:?}, got:\n{text}"
        );
    }
    lab.shutdown().await;
}
