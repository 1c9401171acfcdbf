//! The scan journal: one JSON line per finished domain (its [`Unit`]), appended before the
//! unit's records reach the sinks. It is the checkpoint of `--resume`.
//!
//! A line is written with a single `write` of the whole line, so after SIGKILL the file ends
//! either with a complete line or with a torn one; [`JournalReader`] drops a torn last line
//! and reports it, and [`truncate_torn_tail`] cuts it off before appending resumes. (SIGKILL
//! does not lose data the kernel already has; a power cut can, and is out of scope.)

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::pipeline::Unit;

/// File name of the journal inside the scan's output directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Appends units.
#[derive(Debug)]
pub struct Journal {
    file: File,
}

impl Journal {
    /// Opens (creating if needed) the journal for appending.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal { file })
    }

    /// Appends one unit as one line, in one write.
    pub fn append(&mut self, unit: &Unit) -> io::Result<()> {
        let mut line = serde_json::to_vec(unit).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// Reads the units of a journal in order.
#[derive(Debug)]
pub struct JournalReader {
    lines: io::Split<BufReader<File>>,
    /// Set when the last line was torn (not valid JSON or no newline) and was skipped.
    pub torn_tail: bool,
    line: u64,
}

impl JournalReader {
    /// Opens a journal for reading.
    pub fn open(path: &Path) -> io::Result<JournalReader> {
        let f = File::open(path)?;
        Ok(JournalReader {
            lines: BufReader::new(f).split(b'\n'),
            torn_tail: false,
            line: 0,
        })
    }

    /// The next unit. A line that does not parse is an error unless it is the last one.
    pub fn next_unit(&mut self) -> io::Result<Option<Unit>> {
        let Some(line) = self.lines.next() else {
            return Ok(None);
        };
        let line = line?;
        self.line += 1;
        match serde_json::from_slice::<Unit>(&line) {
            Ok(u) => Ok(Some(u)),
            Err(e) => {
                if self.lines.next().is_none() {
                    self.torn_tail = true;
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("journal line {} is damaged: {e}", self.line),
                    ))
                }
            }
        }
    }
}

/// Cuts a torn last line (no trailing newline) off the journal so appends start clean.
/// Returns whether anything was cut.
pub fn truncate_torn_tail(path: &Path) -> io::Result<bool> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    // Scan backwards in chunks for the last newline.
    let mut pos = len;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_nl: Option<u64> = None;
    while pos > 0 {
        let n = buf.len().min(pos as usize);
        pos -= n as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            last_nl = Some(pos + i as u64);
            break;
        }
    }
    let keep = last_nl.map(|p| p + 1).unwrap_or(0);
    if keep < len {
        f.set_len(keep)?;
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::examples;

    #[test]
    fn units_round_trip_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(JOURNAL_FILE);
        let unit = Unit {
            domain: "example.com".into(),
            records: examples::all(),
        };
        {
            let mut j = Journal::open(&path).expect("open");
            j.append(&unit).expect("append");
            j.append(&unit).expect("append");
        }
        // Simulate SIGKILL in the middle of a third write.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"domain\":\"half").expect("write");
        drop(f);

        let mut r = JournalReader::open(&path).expect("read");
        let mut n = 0;
        while let Some(u) = r.next_unit().expect("unit") {
            assert_eq!(u.records, unit.records);
            n += 1;
        }
        assert_eq!(n, 2);
        assert!(r.torn_tail);

        assert!(truncate_torn_tail(&path).expect("truncate"));
        let mut j = Journal::open(&path).expect("open");
        j.append(&unit).expect("append");
        let mut r = JournalReader::open(&path).expect("read");
        let mut n = 0;
        while r.next_unit().expect("unit").is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert!(!r.torn_tail);
    }

    #[test]
    fn damage_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(
            &path,
            "garbage\n{\"domain\":\"a.example\",\"records\":[]}\n",
        )
        .expect("write");
        let mut r = JournalReader::open(&path).expect("read");
        assert!(r.next_unit().is_err());
    }
}
