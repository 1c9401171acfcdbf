//! A whole STARTTLS dialogue driven by a hostile server: the sans-io client state machine fed
//! the replies parsed from the input, with the TLS handshake's result and the transport
//! failures chosen by the input too, then the stripping-signal detector on what it observed.
//! Properties: the dialogue ends (it asks to close within a bounded number of steps), and a
//! closed dialogue asks for nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_model::ProbeErrorClass;
use mxray_smtp::machine::IoFailure;
use mxray_smtp::reply::ReplyParser;
use mxray_smtp::{signals, Action, Dialogue, ProbeConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, wire)) = data.split_first() else {
        return;
    };
    let cfg = ProbeConfig::default();
    let mut d = if mode & 1 == 1 {
        Dialogue::implicit_tls("scanner.example")
    } else {
        Dialogue::new("scanner.example").force_starttls(mode & 2 == 2)
    };
    if mode & 1 == 1 {
        d.on_implicit_tls_established();
    }
    let mut parser = ReplyParser::new(cfg.limits.max_line, cfg.limits.max_reply);
    parser.feed(wire);
    let mut closed = false;
    // Each reply moves the dialogue on by one step; a dialogue has fewer than 16 steps.
    for step in 0..64u32 {
        let action = match parser.next_reply() {
            Ok(Some(reply)) => d.on_reply(reply),
            Ok(None) => d.on_io_failure(if mode & 4 == 4 {
                IoFailure::Timeout
            } else {
                IoFailure::Closed("eof".into())
            }),
            Err(e) => d.on_io_failure(IoFailure::TooLong(e.to_string())),
        };
        match action {
            Action::Close => {
                closed = true;
                break;
            }
            Action::StartTls => {
                let _ = parser.take_unconsumed();
                if mode & 8 == 8 {
                    let _ = d.on_tls_failed(ProbeErrorClass::TlsAlert, Some(40), "alert".into());
                    closed = true;
                    break;
                }
                let _ = d.on_tls_established();
            }
            Action::Send(line) => {
                assert!(
                    !line.contains(['\r', '\n']),
                    "a command line with a line end"
                );
            }
            _ => {}
        }
        assert!(step < 32, "the dialogue did not end");
    }
    assert!(closed, "the dialogue did not end");
    let _ = signals::detect(d.observations());
});
