//! The storage columns of each record, derived from the record structs: the one description
//! the ClickHouse DDL, the Parquet schema and the Parquet writer of `mxray-store` are built from.
//!
//! `#[derive(Columns)]` (from `mxray-model-derive`) on a record struct implements [`Columns`]:
//! [`Columns::COLUMNS`] lists one [`Column`] per field, in field order, named as the field;
//! its [`ColumnType`] and nullability come from the field's Rust type through
//! [`ColumnValue`] (`String` and vocabulary enums are text, `Option<T>` is a nullable `T`,
//! `Vec<String>` a list, `Vec<TlsaRecord>` the TLSA list, ...). [`Columns::visit_columns`]
//! hands the field values in the same order to a [`RowVisitor`], which a storage format
//! implements. Adding a field to a record is therefore one edit here plus a migration.
//!
//! This module describes values only; the SQL and Parquet type names are `mxray-store`'s.
//!
//! ```
//! use mxray_model::columns::{ColumnType, Columns};
//! use mxray_model::{DnsHostRecord, RecordKind};
//! let ttl = DnsHostRecord::COLUMNS.iter().find(|c| c.name == "address_ttl").unwrap();
//! assert_eq!((ttl.ty, ttl.nullable), (ColumnType::U32, true));
//! assert_eq!(RecordKind::DnsHost.columns()[0].name, "scan_id");
//! ```
//!
//! A column is named as its field, so the derive refuses serde options that would give the JSON
//! key another name (or drop the field from one format):
//!
//! ```
//! #[derive(serde::Serialize, mxray_model::columns::Columns)]
//! struct Row {
//!     #[serde(default)]
//!     name: String,
//! }
//! ```
//!
//! ```compile_fail
//! #[derive(serde::Serialize, mxray_model::columns::Columns)]
//! struct Row {
//!     #[serde(default, rename = "label")]
//!     name: String,
//! }
//! ```

use uuid::Uuid;

use crate::{
    CanaryResultRecord, CertificateRecord, DnsHostRecord, DomainRecord, MtaStsPolicyRecord,
    ScanRecord, SmtpProbeRecord,
};
use crate::{Record, RecordKind, TlsaRecord, UtcTime};

pub use mxray_model_derive::Columns;

/// The value type of one column.
///
/// How `mxray-store` stores each: ClickHouse type (portable to 18.16) and Parquet type.
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): a new type must be a compile error in
/// every storage format's `match`, not a run-time surprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text (vocabulary values too). ClickHouse `String`, Parquet `BYTE_ARRAY (STRING)`.
    Str,
    /// ClickHouse `UInt8`, Parquet `INT32 (INTEGER(8,false))`.
    U8,
    /// ClickHouse `UInt16`, Parquet `INT32 (INTEGER(16,false))`.
    U16,
    /// ClickHouse `UInt32`, Parquet `INT32 (INTEGER(32,false))`.
    U32,
    /// ClickHouse `UInt64`, Parquet `INT64 (INTEGER(64,false))`.
    U64,
    /// ClickHouse `UInt8` (0/1; 18.16 has no `Bool`), Parquet `BOOLEAN`.
    Bool,
    /// ClickHouse `UUID`, Parquet `BYTE_ARRAY (STRING)` in canonical text form.
    Uuid,
    /// A UTC instant, seconds. ClickHouse `DateTime`, Parquet `INT64 (TIMESTAMP(MILLIS, UTC))`.
    Time,
    /// A list of strings. ClickHouse `Array(String)`, Parquet `LIST<STRING>`.
    StrList,
    /// TLSA records ([`TLSA_FIELDS`]). ClickHouse `Nested(usage UInt8, selector UInt8,
    /// matching_type UInt8, data String)`, Parquet `LIST<STRUCT<usage, selector,
    /// matching_type, data>>`.
    Tlsa,
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name: the model's field name (and JSON key).
    pub name: &'static str,
    /// Value type.
    pub ty: ColumnType,
    /// `Nullable(..)` in ClickHouse, `optional` in Parquet: the field is an `Option`.
    pub nullable: bool,
}

/// The fields of a [`TlsaRecord`], in order, as the columns of a [`ColumnType::Tlsa`] value:
/// the one list the ClickHouse `Nested` type, the Parquet struct and its writer derive from.
pub const TLSA_FIELDS: [Column; 4] = [
    Column {
        name: "usage",
        ty: ColumnType::U8,
        nullable: false,
    },
    Column {
        name: "selector",
        ty: ColumnType::U8,
        nullable: false,
    },
    Column {
        name: "matching_type",
        ty: ColumnType::U8,
        nullable: false,
    },
    Column {
        name: "data",
        ty: ColumnType::Str,
        nullable: false,
    },
];

/// A record stored as a table row: its columns and their values, in field order.
/// Implemented by `#[derive(Columns)]`.
pub trait Columns {
    /// The columns, in field order.
    const COLUMNS: &'static [Column];

    /// Hand every field's value to `visitor`, in the order of [`Columns::COLUMNS`]: exactly one
    /// call per column, the one [`ColumnValue`] names for the column's type and nullability.
    fn visit_columns<V: RowVisitor>(&self, visitor: &mut V);
}

/// Receives one row's values, column by column (implemented by a storage format's writer).
/// Unsigned integers narrower than 64 bits arrive as `u32` with their column type.
pub trait RowVisitor {
    /// A [`ColumnType::Str`] value.
    fn str(&mut self, value: &str);
    /// A nullable [`ColumnType::Str`] value.
    fn opt_str(&mut self, value: Option<&str>);
    /// A [`ColumnType::Uuid`] value.
    fn uuid(&mut self, value: &Uuid);
    /// A [`ColumnType::Time`] value.
    fn time(&mut self, value: UtcTime);
    /// A nullable [`ColumnType::Time`] value.
    fn opt_time(&mut self, value: Option<UtcTime>);
    /// A [`ColumnType::U8`], [`ColumnType::U16`] or [`ColumnType::U32`] value (`ty`).
    fn uint(&mut self, ty: ColumnType, value: u32);
    /// A nullable [`ColumnType::U8`], [`ColumnType::U16`] or [`ColumnType::U32`] value.
    fn opt_uint(&mut self, ty: ColumnType, value: Option<u32>);
    /// A [`ColumnType::U64`] value.
    fn u64(&mut self, value: u64);
    /// A [`ColumnType::Bool`] value.
    fn bool(&mut self, value: bool);
    /// A nullable [`ColumnType::Bool`] value.
    fn opt_bool(&mut self, value: Option<bool>);
    /// A [`ColumnType::StrList`] value.
    fn str_list<'a, I: IntoIterator<Item = &'a str>>(&mut self, items: I);
    /// A [`ColumnType::Tlsa`] value.
    fn tlsa(&mut self, records: &[TlsaRecord]);
}

/// A Rust type that is stored as one column: which type, whether nullable, and how its value
/// reaches a [`RowVisitor`]. The field types of the records implement it.
pub trait ColumnValue {
    /// The column type.
    const TYPE: ColumnType;
    /// Whether the column is nullable (the type is an `Option`).
    const NULLABLE: bool;
    /// Hand the value to `visitor` (one call).
    fn visit<V: RowVisitor>(&self, visitor: &mut V);
}

/// A [`ColumnValue`] that may be null (stored as `Option<Self>`).
pub trait NullableValue: ColumnValue {
    /// Hand the value, or null, to `visitor` (one call).
    fn visit_opt<V: RowVisitor>(value: Option<&Self>, visitor: &mut V);
}

/// An element type of a list column (stored as `Vec<Self>`).
pub trait ListItem: Sized {
    /// The type of the list column.
    const LIST_TYPE: ColumnType;
    /// Hand the whole list to `visitor` (one call).
    fn visit_list<V: RowVisitor>(items: &[Self], visitor: &mut V);
}

impl<T: NullableValue> ColumnValue for Option<T> {
    const TYPE: ColumnType = T::TYPE;
    const NULLABLE: bool = true;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        T::visit_opt(self.as_ref(), visitor);
    }
}

impl<T: ListItem> ColumnValue for Vec<T> {
    const TYPE: ColumnType = T::LIST_TYPE;
    const NULLABLE: bool = false;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        T::visit_list(self, visitor);
    }
}

impl ColumnValue for String {
    const TYPE: ColumnType = ColumnType::Str;
    const NULLABLE: bool = false;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        visitor.str(self);
    }
}

impl NullableValue for String {
    #[inline]
    fn visit_opt<V: RowVisitor>(value: Option<&Self>, visitor: &mut V) {
        visitor.opt_str(value.map(String::as_str));
    }
}

impl ListItem for String {
    const LIST_TYPE: ColumnType = ColumnType::StrList;
    #[inline]
    fn visit_list<V: RowVisitor>(items: &[Self], visitor: &mut V) {
        visitor.str_list(items.iter().map(String::as_str));
    }
}

impl ColumnValue for Uuid {
    const TYPE: ColumnType = ColumnType::Uuid;
    const NULLABLE: bool = false;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        visitor.uuid(self);
    }
}

impl ColumnValue for UtcTime {
    const TYPE: ColumnType = ColumnType::Time;
    const NULLABLE: bool = false;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        visitor.time(*self);
    }
}

impl NullableValue for UtcTime {
    #[inline]
    fn visit_opt<V: RowVisitor>(value: Option<&Self>, visitor: &mut V) {
        visitor.opt_time(value.copied());
    }
}

macro_rules! small_uint {
    ($($ty:ty => $col:ident),+) => {$(
        impl ColumnValue for $ty {
            const TYPE: ColumnType = ColumnType::$col;
            const NULLABLE: bool = false;
            #[inline]
            fn visit<V: RowVisitor>(&self, visitor: &mut V) {
                visitor.uint(ColumnType::$col, u32::from(*self));
            }
        }

        impl NullableValue for $ty {
            #[inline]
            fn visit_opt<V: RowVisitor>(value: Option<&Self>, visitor: &mut V) {
                visitor.opt_uint(ColumnType::$col, value.map(|&n| u32::from(n)));
            }
        }
    )+};
}
small_uint!(u8 => U8, u16 => U16, u32 => U32);

impl ColumnValue for u64 {
    const TYPE: ColumnType = ColumnType::U64;
    const NULLABLE: bool = false;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        visitor.u64(*self);
    }
}

impl ColumnValue for bool {
    const TYPE: ColumnType = ColumnType::Bool;
    const NULLABLE: bool = false;
    #[inline]
    fn visit<V: RowVisitor>(&self, visitor: &mut V) {
        visitor.bool(*self);
    }
}

impl NullableValue for bool {
    #[inline]
    fn visit_opt<V: RowVisitor>(value: Option<&Self>, visitor: &mut V) {
        visitor.opt_bool(value.copied());
    }
}

impl ListItem for TlsaRecord {
    const LIST_TYPE: ColumnType = ColumnType::Tlsa;
    #[inline]
    fn visit_list<V: RowVisitor>(items: &[Self], visitor: &mut V) {
        visitor.tlsa(items);
    }
}

impl RecordKind {
    /// The columns of this record type's table, in field order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            RecordKind::Scan => ScanRecord::COLUMNS,
            RecordKind::Domain => DomainRecord::COLUMNS,
            RecordKind::DnsHost => DnsHostRecord::COLUMNS,
            RecordKind::SmtpProbe => SmtpProbeRecord::COLUMNS,
            RecordKind::Certificate => CertificateRecord::COLUMNS,
            RecordKind::MtaStsPolicy => MtaStsPolicyRecord::COLUMNS,
            RecordKind::CanaryResult => CanaryResultRecord::COLUMNS,
        }
    }
}

impl Record {
    /// [`Columns::visit_columns`] of the record inside: its values in the column order of
    /// [`RecordKind::columns`] of [`Record::kind`].
    #[inline]
    pub fn visit_columns<V: RowVisitor>(&self, visitor: &mut V) {
        match self {
            Record::Scan(r) => r.visit_columns(visitor),
            Record::Domain(r) => r.visit_columns(visitor),
            Record::DnsHost(r) => r.visit_columns(visitor),
            Record::SmtpProbe(r) => r.visit_columns(visitor),
            Record::Certificate(r) => r.visit_columns(visitor),
            Record::MtaStsPolicy(r) => r.visit_columns(visitor),
            Record::CanaryResult(r) => r.visit_columns(visitor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples;

    /// Writes what it is given as `name=value` text, checking each call against the column
    /// list, as a storage writer does.
    struct Text<'c> {
        columns: &'c [Column],
        i: usize,
        out: Vec<String>,
    }

    impl Text<'_> {
        fn put(&mut self, ty: ColumnType, nullable: bool, value: String) {
            let col = self.columns[self.i];
            assert_eq!((col.ty, col.nullable), (ty, nullable), "{}", col.name);
            self.out.push(format!("{}={value}", col.name));
            self.i += 1;
        }
    }

    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or("null".into(), |v| v.to_string())
    }

    impl RowVisitor for Text<'_> {
        fn str(&mut self, v: &str) {
            self.put(ColumnType::Str, false, v.into());
        }
        fn opt_str(&mut self, v: Option<&str>) {
            self.put(ColumnType::Str, true, opt(v));
        }
        fn uuid(&mut self, v: &Uuid) {
            self.put(ColumnType::Uuid, false, v.to_string());
        }
        fn time(&mut self, v: UtcTime) {
            self.put(ColumnType::Time, false, v.to_string());
        }
        fn opt_time(&mut self, v: Option<UtcTime>) {
            self.put(ColumnType::Time, true, opt(v));
        }
        fn uint(&mut self, ty: ColumnType, v: u32) {
            self.put(ty, false, v.to_string());
        }
        fn opt_uint(&mut self, ty: ColumnType, v: Option<u32>) {
            self.put(ty, true, opt(v));
        }
        fn u64(&mut self, v: u64) {
            self.put(ColumnType::U64, false, v.to_string());
        }
        fn bool(&mut self, v: bool) {
            self.put(ColumnType::Bool, false, v.to_string());
        }
        fn opt_bool(&mut self, v: Option<bool>) {
            self.put(ColumnType::Bool, true, opt(v));
        }
        fn str_list<'a, I: IntoIterator<Item = &'a str>>(&mut self, items: I) {
            let v: Vec<&str> = items.into_iter().collect();
            self.put(ColumnType::StrList, false, v.join(","));
        }
        fn tlsa(&mut self, records: &[TlsaRecord]) {
            let v: Vec<String> = records
                .iter()
                .map(|t| format!("{} {} {} {}", t.usage, t.selector, t.matching_type, t.data))
                .collect();
            self.put(ColumnType::Tlsa, false, v.join(","));
        }
    }

    fn visit(record: &Record) -> Vec<String> {
        let mut t = Text {
            columns: record.kind().columns(),
            i: 0,
            out: Vec::new(),
        };
        record.visit_columns(&mut t);
        assert_eq!(t.i, t.columns.len(), "{}", record.kind().table());
        t.out
    }

    #[test]
    fn every_column_is_visited_once_in_order_with_the_value_of_its_json_key() {
        for record in examples::all() {
            let json = serde_json::to_value(&record).expect("json");
            let columns = record.kind().columns();
            let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
            let keys: Vec<&str> = json
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .filter(|&k| k != "record")
                .collect();
            // serde_json's map is sorted: compare as sets, then check order by the visit.
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, keys, "{}", record.kind().table());
            for (col, text) in columns.iter().zip(visit(&record)) {
                let value = &text[col.name.len() + 1..];
                let expected = match &json[col.name] {
                    serde_json::Value::Null => "null".to_owned(),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|i| match i {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Object(o) => format!(
                                "{} {} {} {}",
                                o["usage"],
                                o["selector"],
                                o["matching_type"],
                                o["data"].as_str().unwrap_or_default()
                            ),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                assert_eq!(value, expected, "{}.{}", record.kind().table(), col.name);
            }
        }
    }

    #[test]
    fn rust_types_decide_the_column_types() {
        #[derive(Columns)]
        #[allow(dead_code)]
        struct Row {
            id: Uuid,
            at: UtcTime,
            when: Option<UtcTime>,
            name: String,
            note: Option<String>,
            status: crate::ScanStatus,
            error: Option<crate::ProbeErrorClass>,
            signals: Vec<crate::StrippingSignal>,
            names: Vec<String>,
            tlsa: Vec<TlsaRecord>,
            small: u8,
            port: Option<u16>,
            ms: u32,
            count: u64,
            ok: bool,
            valid: Option<bool>,
            r#type: String,
        }
        use ColumnType as T;
        let got: Vec<(&str, ColumnType, bool)> = Row::COLUMNS
            .iter()
            .map(|c| (c.name, c.ty, c.nullable))
            .collect();
        assert_eq!(
            got,
            [
                ("id", T::Uuid, false),
                ("at", T::Time, false),
                ("when", T::Time, true),
                ("name", T::Str, false),
                ("note", T::Str, true),
                ("status", T::Str, false),
                ("error", T::Str, true),
                ("signals", T::StrList, false),
                ("names", T::StrList, false),
                ("tlsa", T::Tlsa, false),
                ("small", T::U8, false),
                ("port", T::U16, true),
                ("ms", T::U32, false),
                ("count", T::U64, false),
                ("ok", T::Bool, false),
                ("valid", T::Bool, true),
                ("type", T::Str, false),
            ]
        );
    }
}
