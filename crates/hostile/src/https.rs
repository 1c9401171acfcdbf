//! The hostile MTA-STS HTTPS servers: TLS (the normal or the 1 MB certificate), the request
//! head read, then the [`HttpsMisbehaviour`] written by hand (no HTTP library would send it).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::catalogue::HttpsMisbehaviour;
use crate::{gzip, SessionLog, HOLD_LIMIT};

/// Longest request head read.
const MAX_REQUEST: usize = 16 * 1024;
/// Most bytes an endless writer sends (it stops earlier when the client leaves).
const MAX_ENDLESS: usize = 256 * 1024 * 1024;
/// Back-references in the small bomb: 48 KiB of gzip.
pub(crate) const SMALL_BOMB_MATCHES: usize = 48 * 1024 * 8 / 13;
/// Members of the large bomb (each the small one): about 1 MB.
const LARGE_BOMB_MEMBERS: usize = 21;

/// Serves `m` on `listener` until the task is aborted.
pub(crate) async fn serve(
    listener: TcpListener,
    m: HttpsMisbehaviour,
    acceptor: TlsAcceptor,
    log: SessionLog,
) {
    let member = std::sync::Arc::new(gzip::bomb_member(SMALL_BOMB_MATCHES));
    loop {
        let (tcp, _) = mxray_net::accept(&listener).await;
        let (log, acceptor, member) = (log.clone(), acceptor.clone(), member.clone());
        tokio::spawn(async move {
            let id = log.open();
            let work = async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if read_head(&mut tls).await {
                    respond(&mut tls, m, &member).await;
                }
            };
            let _ = tokio::time::timeout(HOLD_LIMIT, work).await;
            log.close(id);
        });
    }
}

/// Reads the request head (up to the empty line); false when the client went away first.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head.len() < MAX_REQUEST {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                head.extend_from_slice(&buf[..n]);
                if head.windows(4).any(|w| w == b"\r\n\r\n") {
                    return true;
                }
            }
        }
    }
    false
}

async fn until_eof<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn endless<S: AsyncWrite + Unpin>(s: &mut S, chunk: &[u8]) {
    let mut sent = 0;
    while sent < MAX_ENDLESS {
        if s.write_all(chunk).await.is_err() || s.flush().await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    m: HttpsMisbehaviour,
    member: &[u8],
) {
    use HttpsMisbehaviour as H;
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";
    match m {
        H::EndlessHead => {
            if s.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ").await.is_ok() {
                endless(s, &[b'a'; 4096]).await;
            }
        }
        H::EndlessChunkedBody => {
            let head = [OK, b"Transfer-Encoding: chunked\r\n\r\n"].concat();
            if s.write_all(&head).await.is_ok() {
                let mut chunk = b"1000\r\n".to_vec();
                chunk.extend_from_slice(&[b'm'; 0x1000]);
                chunk.extend_from_slice(b"\r\n");
                endless(s, &chunk).await;
            }
        }
        H::GzipBomb => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                member.len()
            );
            if s.write_all(head.as_bytes()).await.is_ok()
                && s.write_all(member).await.is_ok()
                && s.flush().await.is_ok()
            {
                until_eof(s).await;
            }
        }
        H::GzipBombOverCap => {
            let head = [OK, b"Content-Encoding: gzip\r\nConnection: close\r\n\r\n"].concat();
            if s.write_all(&head).await.is_err() {
                return;
            }
            for _ in 0..LARGE_BOMB_MEMBERS {
                if s.write_all(member).await.is_err() {
                    return;
                }
            }
            let _ = s.flush().await;
            let _ = s.shutdown().await;
            until_eof(s).await;
        }
        H::TrickledBody => {
            let head = [OK, b"Content-Length: 100\r\n\r\n"].concat();
            if s.write_all(&head).await.is_err() || s.flush().await.is_err() {
                return;
            }
            crate::trickle(s, &[b'v'; 100], Duration::from_secs(1)).await;
        }
        H::HugeCertificate => {
            // Never reached: the client refuses the certificate message.
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
        }
    }
}
