//! The Parquet schema of a table, from its column list ([`crate::schema::columns`]).

use std::sync::Arc;

use mxray_model::columns::TLSA_FIELDS;
use mxray_model::RecordKind;
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::{Type, TypePtr};

use crate::error::StoreError;
use crate::schema::{columns, Column, ColumnType};

fn string_leaf(name: &str, rep: Repetition) -> parquet::errors::Result<Type> {
    Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
        .with_repetition(rep)
        .with_logical_type(Some(LogicalType::String))
        .build()
}

fn uint_leaf(name: &str, bits: i8, rep: Repetition) -> parquet::errors::Result<Type> {
    let physical = if bits == 64 {
        Physical::INT64
    } else {
        Physical::INT32
    };
    Type::primitive_type_builder(name, physical)
        .with_repetition(rep)
        .with_logical_type(Some(LogicalType::integer(bits, false)))
        .build()
}

fn list_of(name: &str, element: Type) -> parquet::errors::Result<Type> {
    let list = Type::group_type_builder("list")
        .with_repetition(Repetition::REPEATED)
        .with_fields(vec![Arc::new(element)])
        .build()?;
    Type::group_type_builder(name)
        .with_repetition(Repetition::REQUIRED)
        .with_logical_type(Some(LogicalType::List))
        .with_fields(vec![Arc::new(list)])
        .build()
}

fn column_type(col: &Column) -> parquet::errors::Result<Type> {
    let rep = if col.nullable {
        Repetition::OPTIONAL
    } else {
        Repetition::REQUIRED
    };
    match col.ty {
        ColumnType::Str | ColumnType::Uuid => string_leaf(col.name, rep),
        ColumnType::U8 => uint_leaf(col.name, 8, rep),
        ColumnType::U16 => uint_leaf(col.name, 16, rep),
        ColumnType::U32 => uint_leaf(col.name, 32, rep),
        ColumnType::U64 => uint_leaf(col.name, 64, rep),
        ColumnType::Bool => Type::primitive_type_builder(col.name, Physical::BOOLEAN)
            .with_repetition(rep)
            .build(),
        ColumnType::Time => Type::primitive_type_builder(col.name, Physical::INT64)
            .with_repetition(rep)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MILLIS)))
            .build(),
        ColumnType::StrList => list_of(col.name, string_leaf("element", Repetition::REQUIRED)?),
        ColumnType::Tlsa => {
            let fields = TLSA_FIELDS
                .iter()
                .map(|f| column_type(f).map(Arc::new))
                .collect::<parquet::errors::Result<Vec<_>>>()?;
            let element = Type::group_type_builder("element")
                .with_repetition(Repetition::REQUIRED)
                .with_fields(fields)
                .build()?;
            list_of(col.name, element)
        }
    }
}

/// The Parquet schema of a table: its columns ([`columns`]), in order.
pub fn parquet_schema(kind: RecordKind) -> Result<TypePtr, StoreError> {
    message_type(kind.table(), columns(kind)).map_err(|e| StoreError::parquet(kind.table(), e))
}

/// The Parquet message type `name` with one field per column.
fn message_type(name: &str, cols: &[Column]) -> parquet::errors::Result<TypePtr> {
    let fields = cols
        .iter()
        .map(|c| column_type(c).map(Arc::new))
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    let schema = Type::group_type_builder(name).with_fields(fields).build()?;
    Ok(Arc::new(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::columns::Columns;

    #[test]
    fn a_new_model_field_is_a_new_parquet_column() {
        #[derive(Columns)]
        #[allow(dead_code)]
        struct Probe {
            scan_id: uuid::Uuid,
            probed_at: mxray_model::UtcTime,
            port: u16,
            sni: Option<String>,
            signals: Vec<mxray_model::StrippingSignal>,
            tlsa: Vec<mxray_model::TlsaRecord>,
            added_in_v5: Option<bool>,
        }
        let schema = message_type("probes", Probe::COLUMNS).expect("schema");
        let mut text = Vec::new();
        parquet::schema::printer::print_schema(&mut text, &schema);
        let text = String::from_utf8(text).expect("utf-8");
        let expected = "message probes {
  REQUIRED BYTE_ARRAY scan_id (STRING);
  REQUIRED INT64 probed_at (TIMESTAMP(MILLIS,true));
  REQUIRED INT32 port (INTEGER(16,false));
  OPTIONAL BYTE_ARRAY sni (STRING);
  REQUIRED group signals (LIST) {
    REPEATED group list {
      REQUIRED BYTE_ARRAY element (STRING);
    }
  }
  REQUIRED group tlsa (LIST) {
    REPEATED group list {
      REQUIRED group element {
        REQUIRED INT32 usage (INTEGER(8,false));
        REQUIRED INT32 selector (INTEGER(8,false));
        REQUIRED INT32 matching_type (INTEGER(8,false));
        REQUIRED BYTE_ARRAY data (STRING);
      }
    }
  }
  OPTIONAL BOOLEAN added_in_v5;
}
";
        assert_eq!(text, expected);
    }
}
