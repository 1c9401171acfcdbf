//! The hostile SMTP servers: one listener per case address, one [`SmtpMisbehaviour`] each.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::catalogue::SmtpMisbehaviour;
use crate::{SessionLog, HOLD_LIMIT};

/// Longest command line read from the client.
const MAX_COMMAND: usize = 1024;
/// Most bytes an endless writer sends (it stops earlier when the client leaves).
const MAX_ENDLESS: usize = 256 * 1024 * 1024;
/// Most bytes a slowloris sends (at 300 ms each: longer than [`HOLD_LIMIT`]).
const MAX_TRICKLE: usize = 1000;

/// Serves `m` on `listener` until the task is aborted; every session is logged in `log`.
pub(crate) async fn serve(
    listener: TcpListener,
    m: SmtpMisbehaviour,
    tls: Option<TlsAcceptor>,
    log: SessionLog,
) {
    loop {
        let (stream, _) = mxray_net::accept(&listener).await;
        let log = log.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let id = log.open();
            let _ = tokio::time::timeout(HOLD_LIMIT, session(stream, m, tls)).await;
            log.close(id);
        });
    }
}

/// Reads until the client closes (or an error): what a server that has said everything does.
async fn until_eof<S: AsyncReadExt + Unpin>(s: &mut S) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Writes `chunk` again and again until the client goes away.
async fn endless<S: AsyncWriteExt + Unpin>(s: &mut S, chunk: &[u8]) {
    let mut sent = 0;
    while sent < MAX_ENDLESS {
        if s.write_all(chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// Writes `text` one byte every 300 ms, then the filler byte, until the client goes.
async fn trickle(s: &mut TcpStream, text: &[u8]) {
    let mut bytes = text.to_vec();
    bytes.resize(MAX_TRICKLE, b'x');
    crate::trickle(s, &bytes, Duration::from_millis(300)).await;
}

/// One command line (CRLF-terminated, at most [`MAX_COMMAND`] bytes); None when the client
/// closed or sent something longer.
async fn command(s: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < MAX_COMMAND {
        match s.read(&mut b).await {
            Ok(1) => {
                line.push(b[0]);
                if line.ends_with(b"\r\n") {
                    line.truncate(line.len() - 2);
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
            }
            _ => return None,
        }
    }
    None
}

async fn session(mut s: TcpStream, m: SmtpMisbehaviour, tls: Option<TlsAcceptor>) {
    use SmtpMisbehaviour as M;
    let _ = s.set_nodelay(true);
    match m {
        M::Tarpit => return until_eof(&mut s).await,
        M::ResetAfterAccept => {
            let _ = s.set_zero_linger();
            return drop(s);
        }
        M::EndlessGreetingLine => {
            if s.write_all(b"220 ").await.is_ok() {
                endless(&mut s, &[b'a'; 4096]).await;
            }
            return;
        }
        M::EndlessMultilineGreeting => {
            return endless(
                &mut s,
                "220-hostile.test endless greeting\r\n"
                    .repeat(100)
                    .as_bytes(),
            )
            .await
        }
        M::SlowlorisGreeting => return trickle(&mut s, b"220 ").await,
        M::BinaryGreeting => {
            if s.write_all(b"\x00\xff\xfe\x80\x16\x03\x01 binary\x07\x1b[0m\r\n")
                .await
                .is_ok()
            {
                until_eof(&mut s).await;
            }
            return;
        }
        _ => {}
    }
    if s.write_all(b"220 hostile.test ESMTP hostile\r\n")
        .await
        .is_err()
    {
        return;
    }
    // EHLO (or HELO).
    if command(&mut s).await.is_none() {
        return;
    }
    let starttls = matches!(
        m,
        M::StarttlsHugeCertificate | M::StarttlsOversizedRecord | M::StarttlsGarbage
    );
    match m {
        M::EndlessEhloReply => {
            if s.write_all(b"250-hostile.test\r\n").await.is_ok() {
                endless(&mut s, "250-X-ENDLESS\r\n".repeat(200).as_bytes()).await;
            }
            return;
        }
        M::SlowlorisEhloReply => return trickle(&mut s, b"250-hostile.test\r\n250-").await,
        M::Busy421 => {
            if s.write_all(b"421 4.3.2 hostile.test busy, try later\r\n")
                .await
                .is_ok()
            {
                until_eof(&mut s).await;
            }
            return;
        }
        _ if starttls => {
            if s.write_all(b"250-hostile.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
        _ => {
            if s.write_all(b"250-hostile.test\r\n250 8BITMIME\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
    }
    // The dialogue goes on: STARTTLS (when offered), QUIT, anything else refused.
    while let Some(cmd) = command(&mut s).await {
        let verb = cmd
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "QUIT" => {
                let _ = s.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            "STARTTLS" if starttls => {
                if s.write_all(b"220 2.0.0 go ahead\r\n").await.is_err() {
                    return;
                }
                return after_starttls(s, m, tls).await;
            }
            _ => {
                if s.write_all(b"502 5.5.1 no\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn after_starttls(mut s: TcpStream, m: SmtpMisbehaviour, tls: Option<TlsAcceptor>) {
    use SmtpMisbehaviour as M;
    match (m, tls) {
        (M::StarttlsHugeCertificate, Some(acceptor)) => {
            // The client gives up on the certificate message; the accept then fails.
            if let Ok(mut t) = acceptor.accept(s).await {
                until_eof(&mut t).await;
            }
        }
        (M::StarttlsOversizedRecord, _) => {
            // A handshake record header announcing 65,535 bytes (the limit is 16,384 + 2,048),
            // then the bytes.
            let mut rec = vec![0x16, 0x03, 0x03, 0xff, 0xff, 0x02];
            rec.resize(5 + 0xffff, 0x41);
            if s.write_all(&rec).await.is_ok() {
                until_eof(&mut s).await;
            }
        }
        _ => {
            let _ = s.write_all(b"this is not TLS, it is text\r\n").await;
            until_eof(&mut s).await;
        }
    }
}
