//! The stripping middlebox: a TCP proxy in front of a lab SMTP server that, for clients from
//! the lab's "isp" range only, masks `STARTTLS` as `XXXXXXXA` in both directions — what the
//! Cisco ASA "ESMTP inspection" did in the 2014 Thai ISP and Cricket Wireless cases. The server
//! then never offers STARTTLS to those clients, and a client that insists sends `XXXXXXXA`,
//! which the server refuses as an unknown command. Clients from anywhere else get a transparent
//! byte pipe, TLS included.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxray_net::Dialer;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::spec::ISP_NET;

/// What the middlebox writes instead of `STARTTLS`.
pub const MASK: &[u8; 8] = b"XXXXXXXA";
const LINE_CAP: usize = 4096;
const SESSION_DEADLINE: Duration = Duration::from_secs(300);
const MAX_SESSIONS: usize = 512;

/// Is `ip` in the isp range ([`ISP_NET`])?
pub fn is_isp(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let n = ISP_NET.0.octets();
            o[0] == n[0] && o[1] == n[1] && o[2] == n[2]
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| is_isp(IpAddr::V4(v4))),
    }
}

/// Replaces every case-insensitive `STARTTLS` in `data` with [`MASK`] (same length).
pub fn mask_starttls(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let pat = b"STARTTLS";
    let mut i = 0;
    while i + pat.len() <= out.len() {
        if out[i..i + pat.len()].eq_ignore_ascii_case(pat) {
            out[i..i + pat.len()].copy_from_slice(MASK);
            i += pat.len();
        } else {
            i += 1;
        }
    }
    out
}

/// Copies `from` to `to` line by line (lines capped at 4 KiB), masking STARTTLS.
async fn pump_masked<R, W>(from: R, mut to: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut r = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut r)
            .take(LINE_CAP as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&mask_starttls(&line)).await?;
    }
}

use tokio::io::AsyncReadExt as _;

async fn relay(client: TcpStream, backend: SocketAddr, dialer: Dialer, everyone: bool) {
    let Ok(peer) = client.peer_addr() else { return };
    let Ok(mut server) = dialer.connect(backend).await else {
        return;
    };
    let mut client = client;
    if !everyone && !is_isp(peer.ip()) {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let _ = tokio::join!(pump_masked(cr, sw), pump_masked(sr, cw));
}

/// Accept loop of the middlebox in front of `backend`; it masks STARTTLS for clients from the
/// isp range, or for every client when `everyone` (the `--lab-epoch` regression case).
pub(crate) async fn serve(
    listener: TcpListener,
    backend: SocketAddr,
    dialer: Dialer,
    everyone: bool,
) {
    let mut sessions = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_SESSIONS));
    loop {
        let (stream, _) = mxray_net::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let dialer = dialer.clone();
        sessions.spawn(async move {
            let _permit = permit;
            let _ =
                tokio::time::timeout(SESSION_DEADLINE, relay(stream, backend, dialer, everyone))
                    .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ISP_SOURCE;

    #[test]
    fn masks_the_keyword_in_replies_and_commands() {
        assert_eq!(
            mask_starttls(b"250-STARTTLS\r\n"),
            b"250-XXXXXXXA\r\n".to_vec()
        );
        assert_eq!(mask_starttls(b"starttls\r\n"), b"XXXXXXXA\r\n".to_vec());
        assert_eq!(
            mask_starttls(b"250-PIPELINING\r\n"),
            b"250-PIPELINING\r\n".to_vec()
        );
        assert_eq!(
            mask_starttls(b"STARTTLSSTARTTLS"),
            b"XXXXXXXAXXXXXXXA".to_vec()
        );
    }

    #[test]
    fn isp_range_is_127_0_99_slash_24() {
        assert!(is_isp(IpAddr::V4(ISP_SOURCE)));
        assert!(is_isp("127.0.99.254".parse().expect("ip")));
        assert!(!is_isp("127.0.98.1".parse().expect("ip")));
        assert!(!is_isp("127.0.0.1".parse().expect("ip")));
        assert!(is_isp("::ffff:127.0.99.7".parse().expect("ip")));
    }
}
