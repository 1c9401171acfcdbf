//! Test harness: signed zones served by a real NSD, with a real validating Unbound in front,
//! both on loopback with private directories under a tempdir. Everything started here is
//! killed by [`Lab`]'s Drop (also when a test fails).

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Address NSD listens on.
pub const AUTH_IP: &str = "127.0.0.53";
/// Address Unbound listens on.
pub const RESOLVER_IP: &str = "127.0.0.54";

/// TLSA association data used in the zones (any 32 bytes).
pub const TLSA_HEX: &str = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

/// Binaries the harness needs, with their Debian package.
const NEEDED: &[(&str, &str)] = &[
    ("nsd", "nsd"),
    ("unbound", "unbound"),
    ("ldns-keygen", "ldnsutils"),
    ("ldns-signzone", "ldnsutils"),
];

fn find_binary(name: &str) -> Option<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// `Some(reason)` when the servers are not installed. Panics instead when
/// `MXRAY_REQUIRE_SERVERS=1`.
pub fn missing_servers() -> Option<String> {
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|(b, _)| find_binary(b).is_none())
        .map(|(b, p)| format!("{b} (apt package {p})"))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let msg = format!("missing: {}", missing.join(", "));
    if std::env::var("MXRAY_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("MXRAY_REQUIRE_SERVERS=1 but {msg}");
    }
    Some(msg)
}

/// A free UDP+TCP port on `ip` (best effort: bound then released).
pub fn free_port(ip: &str) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Generates a key with ldns-keygen in `dir`; returns the file base name (`K...`).
fn keygen(dir: &Path, zone: &str, ksk: bool) -> String {
    let mut cmd = Command::new(find_binary("ldns-keygen").expect("ldns-keygen"));
    cmd.current_dir(dir).args(["-a", "ECDSAP256SHA256"]);
    if ksk {
        cmd.arg("-k");
    }
    cmd.arg(zone);
    run(&mut cmd)
}

/// Signs with NSEC (ldns-signzone's default); returns the signed file name.
fn sign(dir: &Path, zonefile: &str, origin: &str, keys: &[&str]) -> String {
    let mut cmd = Command::new(find_binary("ldns-signzone").expect("ldns-signzone"));
    cmd.current_dir(dir)
        .args(["-o", origin, zonefile])
        .args(keys);
    run(&mut cmd);
    format!("{zonefile}.signed")
}

const SOA: &str = "@ 3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300";

fn parent_zone(auth_ip: &str, child_ds: &str) -> String {
    let big: String = (0..40)
        .map(|i| format!("_mta-sts.big 300 IN TXT \"v=STSv1; id=record{i:02}-padding-padding-padding-padding-padding-padding-padding\"\n"))
        .collect();
    format!(
        "$ORIGIN test.\n$TTL 300\n{SOA}\n\
@ IN NS ns.test.\n\
ns IN A {auth_ip}\n\
good IN MX 10 mx1.good.test.\n\
good IN MX 20 mx2.good.test.\n\
mx1.good IN A 127.0.0.10\n\
mx1.good IN AAAA ::1\n\
mx2.good IN A 127.0.0.11\n\
_25._tcp.mx1.good IN TLSA 3 1 1 {TLSA_HEX}\n\
_mta-sts.good IN TXT \"v=STSv1; \" \"id=20240101\"\n\
_smtp._tls.good IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@good.test\"\n\
nullmx IN MX 0 .\n\
implicit IN A 127.0.0.12\n\
nodata IN TXT \"no mail here\"\n\
cname IN MX 10 alias.cname.test.\n\
alias.cname IN CNAME real.target.test.\n\
real.target IN A 127.0.0.13\n\
_25._tcp.real.target IN TLSA 2 0 1 {TLSA_HEX}\n\
_25._tcp.alias.cname IN TLSA 3 0 1 {TLSA_HEX}\n\
big IN MX 10 mx1.good.test.\n\
{big}\
insecure IN NS ns.insecure.test.\n\
ns.insecure IN A {auth_ip}\n\
bogus IN NS ns.bogus.test.\n\
ns.bogus IN A {auth_ip}\n\
{child_ds}\n"
    )
}

fn insecure_zone() -> String {
    format!(
        "$ORIGIN insecure.test.\n$TTL 300\n{SOA}\n\
@ IN NS ns.insecure.test.\n\
ns IN A {AUTH_IP}\n\
@ IN MX 10 mx.insecure.test.\n\
mx IN A 127.0.0.14\n\
_25._tcp.mx IN TLSA 3 1 1 {TLSA_HEX}\n"
    )
}

fn bogus_zone() -> String {
    format!(
        "$ORIGIN bogus.test.\n$TTL 300\n{SOA}\n\
@ IN NS ns.bogus.test.\n\
ns IN A {AUTH_IP}\n\
@ IN MX 10 mx.bogus.test.\n\
mx IN A 127.0.0.15\n\
_25._tcp.mx IN TLSA 3 1 1 {TLSA_HEX}\n"
    )
}

struct Proc {
    name: &'static str,
    child: Child,
}

/// The running lab. Drop kills exactly the processes it started.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub auth: SocketAddr,
    pub resolver: SocketAddr,
    /// Trust-anchor file for `test.` with a DS line.
    pub anchor_ds: PathBuf,
    /// Trust-anchor file for `test.` with a DNSKEY line.
    pub anchor_dnskey: PathBuf,
    procs: Vec<Proc>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

impl Lab {
    /// Signs the zones, starts NSD and Unbound and waits until both answer.
    pub fn start() -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let auth_port = free_port(AUTH_IP);
        let res_port = free_port(RESOLVER_IP);
        let auth: SocketAddr = format!("{AUTH_IP}:{auth_port}").parse().expect("addr");
        let resolver: SocketAddr = format!("{RESOLVER_IP}:{res_port}").parse().expect("addr");

        // Child zones first: bogus.test is signed, then broken; insecure.test is unsigned.
        std::fs::write(d.join("insecure.test.zone"), insecure_zone()).expect("write");
        std::fs::write(d.join("bogus.test.zone"), bogus_zone()).expect("write");
        let bk = keygen(d, "bogus.test.", true);
        let bz = keygen(d, "bogus.test.", false);
        let bsigned = sign(d, "bogus.test.zone", "bogus.test.", &[&bk, &bz]);
        let text = std::fs::read_to_string(d.join(&bsigned)).expect("read");
        // Change signed data: the MX and TLSA RRSIGs no longer match (the A RRset stays valid).
        let broken = text
            .replace("MX\t10 mx.bogus.test.", "MX\t20 mx.bogus.test.")
            .replace(&TLSA_HEX[..8], "deadbeef");
        assert_ne!(text, broken, "bogus zone edit did not apply");
        std::fs::write(d.join(&bsigned), broken).expect("write");
        let child_ds = std::fs::read_to_string(d.join(format!("{bk}.ds"))).expect("ds");

        std::fs::write(d.join("test.zone"), parent_zone(AUTH_IP, child_ds.trim())).expect("write");
        let tk = keygen(d, "test.", true);
        let tz = keygen(d, "test.", false);
        let tsigned = sign(d, "test.zone", "test.", &[&tk, &tz]);

        let anchor_ds = d.join("test.anchor.ds");
        std::fs::copy(d.join(format!("{tk}.ds")), &anchor_ds).expect("copy ds");
        let anchor_dnskey = d.join("test.anchor.key");
        std::fs::copy(d.join(format!("{tk}.key")), &anchor_dnskey).expect("copy key");

        let nsd_conf = format!(
            "server:\n  ip-address: {AUTH_IP}@{auth_port}\n  port: {auth_port}\n  zonesdir: \"{dir}\"\n  \
pidfile: \"{dir}/nsd.pid\"\n  database: \"\"\n  zonelistfile: \"{dir}/zone.list\"\n  \
xfrdfile: \"{dir}/xfrd.state\"\n  xfrdir: \"{dir}\"\n  username: \"\"\n  chroot: \"\"\n  \
logfile: \"{dir}/nsd.log\"\n  server-count: 1\n  tcp-count: 64\n  verbosity: 1\n  \
do-ip6: no\n  hide-version: yes\nremote-control:\n  control-enable: no\n\
zone:\n  name: \"test.\"\n  zonefile: \"{tsigned}\"\n\
zone:\n  name: \"insecure.test.\"\n  zonefile: \"insecure.test.zone\"\n\
zone:\n  name: \"bogus.test.\"\n  zonefile: \"{bsigned}\"\n",
            dir = d.display()
        );
        std::fs::write(d.join("nsd.conf"), nsd_conf).expect("write");
        let unbound_conf = format!(
            "server:\n  interface: {RESOLVER_IP}@{res_port}\n  port: {res_port}\n  \
do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  \
pidfile: \"{dir}/unbound.pid\"\n  use-syslog: no\n  logfile: \"{dir}/unbound.log\"\n  \
verbosity: 1\n  num-threads: 1\n  do-ip6: no\n  so-reuseport: no\n  \
access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  \
module-config: \"validator iterator\"\n  trust-anchor-file: \"{anchor}\"\n  \
ede: yes\n  val-log-level: 1\n  qname-minimisation: no\n  \
outgoing-interface: 127.0.0.1\n  edns-buffer-size: 1232\n  \
max-udp-size: 1232\n  local-zone: \"test.\" nodefault\n\
remote-control:\n  control-enable: no\n\
stub-zone:\n  name: \"test.\"\n  stub-addr: {AUTH_IP}@{auth_port}\n",
            dir = d.display(),
            anchor = anchor_ds.display()
        );
        std::fs::write(d.join("unbound.conf"), unbound_conf).expect("write");

        let mut lab = Lab {
            dir,
            auth,
            resolver,
            anchor_ds,
            anchor_dnskey,
            procs: Vec::new(),
        };
        let d = lab.dir.path().to_owned();
        lab.spawn(
            "nsd",
            Command::new(find_binary("nsd").expect("nsd"))
                .args(["-d", "-c"])
                .arg(d.join("nsd.conf")),
        );
        lab.wait_ready(auth, "nsd", &d.join("nsd.log"));
        lab.spawn(
            "unbound",
            Command::new(find_binary("unbound").expect("unbound"))
                .args(["-d", "-c"])
                .arg(d.join("unbound.conf")),
        );
        lab.wait_ready(resolver, "unbound", &d.join("unbound.log"));
        lab
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        self.procs.push(Proc { name, child });
    }

    /// Polls with an SOA query for `test.` until a reply comes (10 s at most).
    fn wait_ready(&mut self, addr: SocketAddr, name: &str, log: &Path) {
        let query: [u8; 21] = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 6, 0,
        ];
        let mut q = query.to_vec();
        q.push(1);
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            for p in &mut self.procs {
                if let Ok(Some(st)) = p.child.try_wait() {
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    panic!("{} exited early ({st}); log:\n{log}", p.name);
                }
            }
            let _ = sock.send_to(&q, addr);
            let mut buf = [0u8; 1500];
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if n > 12 && buf[0] == 0x12 && buf[1] == 0x34 {
                    return;
                }
            }
        }
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{name} did not answer on {addr}; log:\n{log}");
    }
}
