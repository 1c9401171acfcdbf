//! The destinations' networks: the `ip_asn` table that scripts/load-asn writes (Parquet,
//! columns `family`, `network`, `length`, `asn`, `as_name`, `country`), matched by longest
//! prefix, as notebooks/sql/ip_asn_lookup.sql does.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use mxray_scan::report::Network;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::ReportError;

/// A prefix-to-AS table.
#[derive(Debug, Default)]
pub struct IpNetworks {
    prefixes: HashMap<(IpAddr, u8), (u32, String)>,
    /// Prefix lengths present, per family (4, 6), longest first when searched.
    lengths: [BTreeSet<u8>; 2],
}

fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6((bits & mask).into())
        }
    }
}

impl IpNetworks {
    /// Adds one prefix (the network address is masked to `length`).
    pub fn insert(&mut self, network: IpAddr, length: u8, asn: u32, as_name: &str) {
        let family = usize::from(network.is_ipv6());
        let max = if network.is_ipv6() { 128 } else { 32 };
        let length = length.min(max);
        self.lengths[family].insert(length);
        self.prefixes.insert(
            (masked(network, length), length),
            (asn, as_name.to_string()),
        );
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// True without prefixes.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The longest prefix covering `ip` (text form); `None` when none does or `ip` is not an
    /// address.
    pub fn lookup(&self, ip: &str) -> Option<Network> {
        let ip: IpAddr = ip.parse().ok()?;
        let family = usize::from(ip.is_ipv6());
        for &len in self.lengths[family].iter().rev() {
            let net = masked(ip, len);
            if let Some((asn, name)) = self.prefixes.get(&(net, len)) {
                return Some(Network {
                    asn: *asn,
                    as_name: name.clone(),
                    prefix: format!("{net}/{len}"),
                });
            }
        }
        None
    }

    /// Reads the Parquet file of `scripts/load-asn --out`.
    pub fn from_parquet(path: &Path) -> Result<IpNetworks, ReportError> {
        let bad = |detail: String| ReportError::IpAsn {
            path: path.to_path_buf(),
            detail,
        };
        let file = std::fs::File::open(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = SerializedFileReader::new(file).map_err(|e| bad(e.to_string()))?;
        let rows = reader.get_row_iter(None).map_err(|e| bad(e.to_string()))?;
        let mut out = IpNetworks::default();
        for (i, row) in rows.enumerate() {
            let row = row.map_err(|e| bad(format!("row {i}: {e}")))?;
            let (mut network, mut length, mut asn, mut name) = (None, None, None, String::new());
            for (col, field) in row.get_column_iter() {
                let int = match field {
                    Field::UByte(v) => Some(u64::from(*v)),
                    Field::UShort(v) => Some(u64::from(*v)),
                    Field::UInt(v) => Some(u64::from(*v)),
                    Field::ULong(v) => Some(*v),
                    Field::Byte(v) => u64::try_from(*v).ok(),
                    Field::Short(v) => u64::try_from(*v).ok(),
                    Field::Int(v) => u64::try_from(*v).ok(),
                    Field::Long(v) => u64::try_from(*v).ok(),
                    _ => None,
                };
                match (col.as_str(), field) {
                    ("network", Field::Str(s)) => network = s.parse::<IpAddr>().ok(),
                    ("as_name", Field::Str(s)) => name = s.clone(),
                    ("length", _) => length = int.and_then(|v| u8::try_from(v).ok()),
                    ("asn", _) => asn = int.and_then(|v| u32::try_from(v).ok()),
                    _ => {}
                }
            }
            match (network, length, asn) {
                (Some(n), Some(l), Some(a)) => out.insert(n, l, a, &name),
                _ => {
                    return Err(bad(format!(
                        "row {i}: want network (IP text), length (0..128) and asn (UInt32), \
                         as scripts/load-asn writes"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// One prefix of an `ip_asn` table: network, length, AS number, AS name.
pub type Prefix<'a> = (IpAddr, u8, u32, &'a str);

/// Writes an `ip_asn` table in scripts/load-asn's layout (for tests and small hand-made
/// tables; real ones come from scripts/load-asn).
pub fn write_parquet(path: &Path, prefixes: &[Prefix<'_>]) -> Result<(), ReportError> {
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;

    let bad = |e: parquet::errors::ParquetError| ReportError::IpAsn {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let schema = parquet::schema::parser::parse_message_type(
        "message schema { REQUIRED INT32 family (INTEGER(8,false)); \
         REQUIRED BYTE_ARRAY network (UTF8); REQUIRED INT32 length (INTEGER(8,false)); \
         REQUIRED INT32 asn (INTEGER(32,false)); REQUIRED BYTE_ARRAY as_name (UTF8); \
         REQUIRED BYTE_ARRAY country (UTF8); }",
    )
    .map_err(bad)?;
    let file = std::fs::File::create(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), props).map_err(bad)?;
    let mut rg = w.next_row_group().map_err(bad)?;
    let ints: [Vec<i32>; 3] = [
        prefixes
            .iter()
            .map(|p| if p.0.is_ipv6() { 6 } else { 4 })
            .collect(),
        prefixes.iter().map(|p| i32::from(p.1)).collect(),
        // UInt32 stored in INT32, as Parquet does.
        prefixes
            .iter()
            .map(|p| i32::from_ne_bytes(p.2.to_ne_bytes()))
            .collect(),
    ];
    let text = |f: &dyn Fn(&Prefix<'_>) -> String| -> Vec<ByteArray> {
        prefixes
            .iter()
            .map(|p| ByteArray::from(f(p).as_str()))
            .collect()
    };
    let strs: [Vec<ByteArray>; 3] = [
        text(&|p| p.0.to_string()),
        text(&|p| p.3.to_string()),
        text(&|_| String::new()),
    ];
    let mut i = 0;
    while let Some(mut col) = rg.next_column().map_err(bad)? {
        match i {
            0 => col.typed::<Int32Type>().write_batch(&ints[0], None, None),
            1 => col
                .typed::<ByteArrayType>()
                .write_batch(&strs[0], None, None),
            2 => col.typed::<Int32Type>().write_batch(&ints[1], None, None),
            3 => col.typed::<Int32Type>().write_batch(&ints[2], None, None),
            4 => col
                .typed::<ByteArrayType>()
                .write_batch(&strs[1], None, None),
            _ => col
                .typed::<ByteArrayType>()
                .write_batch(&strs[2], None, None),
        }
        .map_err(bad)?;
        col.close().map_err(bad)?;
        i += 1;
    }
    rg.close().map_err(bad)?;
    w.close().map_err(bad)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_per_family() {
        let mut t = IpNetworks::default();
        t.insert("127.0.0.0".parse().expect("ip"), 8, 64500, "LOOP-WIDE");
        t.insert("127.0.2.0".parse().expect("ip"), 24, 64501, "LOOP-NARROW");
        t.insert("::".parse().expect("ip"), 0, 64502, "V6-ALL");
        assert_eq!(t.lookup("127.0.2.9").map(|n| n.asn), Some(64501));
        assert_eq!(
            t.lookup("127.0.3.9").map(|n| n.prefix),
            Some("127.0.0.0/8".into())
        );
        assert_eq!(t.lookup("::1").map(|n| n.asn), Some(64502));
        assert_eq!(t.lookup("10.0.0.1"), None);
        assert_eq!(t.lookup("not an ip"), None);
    }

    #[test]
    fn reads_the_load_asn_layout() {
        let path =
            std::env::temp_dir().join(format!("mxray-ip-asn-{}.parquet", std::process::id()));
        write_parquet(
            &path,
            &[
                (
                    "127.0.10.0".parse().expect("ip"),
                    24,
                    4_200_000_000,
                    "BIG-ASN",
                ),
                ("2001:db8::".parse().expect("ip"), 32, 64510, "DOC-V6"),
            ],
        )
        .expect("write");
        let t = IpNetworks::from_parquet(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(t.len(), 2);
        let n = t.lookup("127.0.10.26").expect("covered");
        assert_eq!((n.asn, n.as_name.as_str()), (4_200_000_000, "BIG-ASN"));
        assert_eq!(n.prefix, "127.0.10.0/24");
        assert_eq!(t.lookup("2001:db8::25").map(|n| n.asn), Some(64510));
    }
}
