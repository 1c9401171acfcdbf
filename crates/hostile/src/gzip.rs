//! A gzip bomb made by hand (no compression library needed): one deflate block with fixed
//! Huffman codes holding a literal zero and then `matches` back-references of 258 bytes at
//! distance 1, each 13 bits long, so 1.6 bytes of gzip inflate to 258 bytes of zeros.

/// One gzip member (RFC 1952) that inflates to `1 + 258 * matches` zero bytes.
pub fn bomb_member(matches: usize) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut w = BitWriter::default();
    w.bits(1, 1); // BFINAL
    w.bits(0b01, 2); // BTYPE = fixed Huffman
    w.code(0x30, 8); // literal 0: fixed code 0x30 + 0, 8 bits
    for _ in 0..matches {
        w.code(0b1100_0101, 8); // length 258: symbol 285, fixed code 11000101, no extra bits
        w.code(0, 5); // distance 1: code 0, 5 bits, no extra bits
    }
    w.code(0, 7); // end of block: symbol 256, fixed code 0000000
    out.extend(w.finish());
    let size = 1 + 258 * matches;
    out.extend(crc32_of_zeros(size).to_le_bytes());
    out.extend((size as u32).to_le_bytes());
    out
}

/// The size `bomb_member(matches)` inflates to.
pub fn inflated_size(matches: usize) -> usize {
    1 + 258 * matches
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    /// `n` bits of `v`, least significant first (deflate's order for header fields).
    fn bits(&mut self, v: u32, n: u32) {
        for i in 0..n {
            self.acc |= ((v >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// A Huffman code of `n` bits, most significant first (RFC 1951 §3.1.1).
    fn code(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            self.bits((v >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn crc32_of_zeros(len: usize) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = 0xFFFF_FFFFu32;
    for _ in 0..len {
        crc = table[(crc & 0xff) as usize] ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bomb_is_a_valid_gzip_of_zeros() {
        // Checked with the system's gzip when there is one (it is part of every Debian).
        let member = bomb_member(1000);
        assert!(member.len() < 1700, "{}", member.len());
        let dir = std::env::temp_dir().join(format!("mxray-hostile-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let f = dir.join("bomb.gz");
        std::fs::write(&f, [member.clone(), member].concat()).expect("write");
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&f)
            .output()
            .expect("gzip (Debian package gzip) runs");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), 2 * inflated_size(1000));
        assert!(out.stdout.iter().all(|&b| b == 0));
    }
}
