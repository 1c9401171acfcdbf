//! Column buffers: one table's rows, held column by column (values, definition and repetition
//! levels per Parquet leaf) until a row group is written. A record's values arrive through
//! the model's [`RowVisitor`] in column order ([`Record::visit_columns`], derived from the
//! record struct), so there is no per-table code here.

use mxray_model::columns::{RowVisitor, TLSA_FIELDS};
use mxray_model::{Record, RecordKind, TlsaRecord, UtcTime};

use crate::schema::{columns, Column, ColumnType};

#[derive(Debug)]
pub(super) enum Values {
    /// Strings back to back in `data`; value `i` ends at `ends[i]` (one allocation per row
    /// group instead of one per value).
    Bytes {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Values {
    /// Bytes allocated for the buffered values (capacity, not length: a growing buffer holds
    /// up to twice what it stores, and the bound is on memory).
    fn bytes(&self) -> usize {
        match self {
            Values::Bytes { data, ends } => data.capacity() + ends.capacity() * 8,
            Values::I32(v) => v.capacity() * 4,
            Values::I64(v) => v.capacity() * 8,
            Values::Bool(v) => v.capacity(),
        }
    }

    fn clear(&mut self) {
        match self {
            Values::Bytes { data, ends } => {
                data.clear();
                ends.clear();
            }
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::Bool(v) => v.clear(),
        }
    }
}

/// The buffered values and levels of one Parquet leaf column.
#[derive(Debug)]
pub(super) struct Leaf {
    pub(super) values: Values,
    pub(super) def: Vec<i16>,
    pub(super) rep: Vec<i16>,
    pub(super) max_def: i16,
    pub(super) max_rep: i16,
}

impl Leaf {
    fn new(ty: ColumnType, max_def: i16, max_rep: i16) -> Leaf {
        let values = match ty {
            ColumnType::Str | ColumnType::Uuid | ColumnType::StrList => Values::Bytes {
                data: Vec::new(),
                ends: Vec::new(),
            },
            ColumnType::U8 | ColumnType::U16 | ColumnType::U32 => Values::I32(Vec::new()),
            ColumnType::U64 | ColumnType::Time => Values::I64(Vec::new()),
            ColumnType::Bool => Values::Bool(Vec::new()),
            // Never a leaf type: a TLSA column has one leaf per struct field.
            ColumnType::Tlsa => Values::Bytes {
                data: Vec::new(),
                ends: Vec::new(),
            },
        };
        Leaf {
            values,
            def: Vec::new(),
            rep: Vec::new(),
            max_def,
            max_rep,
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.def.clear();
        self.rep.clear();
    }
}

/// The leaves of one table, in schema (depth-first) order.
#[derive(Debug)]
pub(super) struct ColumnBuffers {
    kind: RecordKind,
    pub(super) leaves: Vec<Leaf>,
    pub(super) rows: usize,
}

impl ColumnBuffers {
    pub(super) fn new(kind: RecordKind) -> ColumnBuffers {
        let mut leaves = Vec::new();
        for col in columns(kind) {
            match col.ty {
                ColumnType::StrList => leaves.push(Leaf::new(col.ty, 1, 1)),
                ColumnType::Tlsa => {
                    for Column { ty, .. } in TLSA_FIELDS {
                        leaves.push(Leaf::new(ty, 1, 1));
                    }
                }
                ty => leaves.push(Leaf::new(ty, i16::from(col.nullable), 0)),
            }
        }
        ColumnBuffers {
            kind,
            leaves,
            rows: 0,
        }
    }

    /// Append one record. On error the buffers may hold a partial row, so the caller must
    /// discard the row group (the sink turns it into an error).
    pub(super) fn push(&mut self, record: &Record) -> Result<(), String> {
        let mut w = RowWriter {
            columns: columns(self.kind),
            leaves: &mut self.leaves,
            ci: 0,
            li: 0,
            error: None,
        };
        record.visit_columns(&mut w);
        if let Some(e) = w.error {
            return Err(e);
        }
        if w.ci != w.columns.len() {
            return Err(format!(
                "record of the wrong table for {}",
                self.kind.table()
            ));
        }
        self.rows += 1;
        Ok(())
    }

    pub(super) fn clear(&mut self) {
        self.leaves.iter_mut().for_each(Leaf::clear);
        self.rows = 0;
    }

    /// Bytes held by the buffered values and levels of every leaf.
    pub(super) fn bytes(&self) -> usize {
        self.leaves
            .iter()
            .map(|l| l.values.bytes() + (l.def.capacity() + l.rep.capacity()) * 2)
            .sum()
    }
}

/// Appends one record's values to the leaf buffers, column by column in schema order, checking
/// each call against the schema (a mismatch is a programming error the round-trip tests catch).
struct RowWriter<'a> {
    columns: &'static [Column],
    leaves: &'a mut [Leaf],
    ci: usize,
    li: usize,
    error: Option<String>,
}

impl RowWriter<'_> {
    /// The next column's first leaf, when the column has this type and nullability.
    #[inline]
    fn next(&mut self, ty: ColumnType, nullable: bool) -> Option<&mut Leaf> {
        if self.error.is_some() {
            return None;
        }
        let Some(col) = self.columns.get(self.ci) else {
            self.error = Some("more values than columns".into());
            return None;
        };
        if col.ty != ty || col.nullable != nullable {
            self.error = Some(format!(
                "column {}: written as {ty:?}, nullable {nullable}",
                col.name
            ));
            return None;
        }
        self.ci += 1;
        let li = self.li;
        self.li += if ty == ColumnType::Tlsa {
            TLSA_FIELDS.len()
        } else {
            1
        };
        self.leaves.get_mut(li)
    }

    #[inline]
    fn bytes(leaf: &mut Leaf, s: &str) {
        if let Values::Bytes { data, ends } = &mut leaf.values {
            data.extend_from_slice(s.as_bytes());
            ends.push(data.len());
        }
    }

    #[inline]
    fn int32(leaf: &mut Leaf, n: u32) {
        if let Values::I32(v) = &mut leaf.values {
            // Unsigned 32-bit values are stored in INT32 by bit pattern (Parquet spec).
            v.push(n as i32);
        }
    }

    #[inline]
    fn int64(leaf: &mut Leaf, n: i64) {
        if let Values::I64(v) = &mut leaf.values {
            v.push(n);
        }
    }

    #[inline]
    fn boolean(leaf: &mut Leaf, b: bool) {
        if let Values::Bool(v) = &mut leaf.values {
            v.push(b);
        }
    }
}

impl RowVisitor for RowWriter<'_> {
    fn str(&mut self, s: &str) {
        if let Some(l) = self.next(ColumnType::Str, false) {
            Self::bytes(l, s);
        }
    }

    fn opt_str(&mut self, s: Option<&str>) {
        if let Some(l) = self.next(ColumnType::Str, true) {
            l.def.push(i16::from(s.is_some()));
            if let Some(s) = s {
                Self::bytes(l, s);
            }
        }
    }

    fn uuid(&mut self, u: &uuid::Uuid) {
        if let Some(l) = self.next(ColumnType::Uuid, false) {
            let mut buf = uuid::Uuid::encode_buffer();
            Self::bytes(l, u.hyphenated().encode_lower(&mut buf));
        }
    }

    fn time(&mut self, t: UtcTime) {
        if let Some(l) = self.next(ColumnType::Time, false) {
            Self::int64(l, t.unix().saturating_mul(1000));
        }
    }

    fn opt_time(&mut self, t: Option<UtcTime>) {
        if let Some(l) = self.next(ColumnType::Time, true) {
            l.def.push(i16::from(t.is_some()));
            if let Some(t) = t {
                Self::int64(l, t.unix().saturating_mul(1000));
            }
        }
    }

    fn uint(&mut self, ty: ColumnType, n: u32) {
        if let Some(l) = self.next(ty, false) {
            Self::int32(l, n);
        }
    }

    fn opt_uint(&mut self, ty: ColumnType, n: Option<u32>) {
        if let Some(l) = self.next(ty, true) {
            l.def.push(i16::from(n.is_some()));
            if let Some(n) = n {
                Self::int32(l, n);
            }
        }
    }

    fn u64(&mut self, n: u64) {
        if let Some(l) = self.next(ColumnType::U64, false) {
            // Unsigned 64-bit values are stored in INT64 by bit pattern.
            Self::int64(l, n as i64);
        }
    }

    fn bool(&mut self, b: bool) {
        if let Some(l) = self.next(ColumnType::Bool, false) {
            Self::boolean(l, b);
        }
    }

    fn opt_bool(&mut self, b: Option<bool>) {
        if let Some(l) = self.next(ColumnType::Bool, true) {
            l.def.push(i16::from(b.is_some()));
            if let Some(b) = b {
                Self::boolean(l, b);
            }
        }
    }

    fn str_list<'s, I: IntoIterator<Item = &'s str>>(&mut self, items: I) {
        if let Some(l) = self.next(ColumnType::StrList, false) {
            let mut n = 0;
            for s in items {
                Self::bytes(l, s);
                l.def.push(1);
                l.rep.push(i16::from(n > 0));
                n += 1;
            }
            if n == 0 {
                l.def.push(0);
                l.rep.push(0);
            }
        }
    }

    fn tlsa(&mut self, records: &[TlsaRecord]) {
        let li = self.li;
        if self.next(ColumnType::Tlsa, false).is_none() {
            return;
        }
        let Some(leaves) = self.leaves.get_mut(li..li + TLSA_FIELDS.len()) else {
            self.error = Some("tlsa: missing leaves".into());
            return;
        };
        for (k, leaf) in leaves.iter_mut().enumerate() {
            if records.is_empty() {
                leaf.def.push(0);
                leaf.rep.push(0);
            }
            for (i, t) in records.iter().enumerate() {
                match k {
                    0 => Self::int32(leaf, u32::from(t.usage)),
                    1 => Self::int32(leaf, u32::from(t.selector)),
                    2 => Self::int32(leaf, u32::from(t.matching_type)),
                    _ => Self::bytes(leaf, &t.data),
                }
                leaf.def.push(1);
                leaf.rep.push(i16::from(i > 0));
            }
        }
    }
}
