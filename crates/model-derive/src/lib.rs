//! `#[derive(Columns)]`: the storage columns of an mxray record, from its struct.
//!
//! What it does: for a struct with named fields, implements `mxray_model::columns::Columns`:
//! `COLUMNS`, one `Column` per field in declaration order (name = field name, type and
//! nullability from the field's Rust type through `mxray_model::columns::ColumnValue`), and
//! `visit_columns`, which hands the field values in that same order to a
//! `mxray_model::columns::RowVisitor`. The store builds the ClickHouse DDL and the Parquet
//! schema from `COLUMNS` and writes Parquet rows through `visit_columns`, so a field is written
//! down once, in the model.
//!
//! What it does not: it does not look at type names (the `ColumnValue` trait decides what a
//! type is stored as, so a type alias or a new vocabulary enum needs no attribute here), and
//! it knows nothing of ClickHouse or Parquet. It refuses what would make a column name differ
//! from the JSON key: `#[serde(rename, rename_all, flatten, skip, ...)]`, tuple structs,
//! enums and generics.
//!
//! Main item: the [`Columns`](macro@Columns) derive. Used inside `mxray-model` only, which
//! re-exports it.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::ext::IdentExt;
use syn::{parse_macro_input, Attribute, Data, DeriveInput, Fields};

/// Implements `mxray_model::columns::Columns` for a record struct (see the crate docs).
#[proc_macro_derive(Columns)]
pub fn derive_columns(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "Columns: a record struct has no generic parameters",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "Columns: only a struct with named fields is a table row",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &data.fields,
            "Columns: only a struct with named fields is a table row",
        ));
    };
    refuse_renames(&input.attrs)?;
    let m = quote!(::mxray_model::columns);
    let mut columns = Vec::new();
    let mut visits = Vec::new();
    for field in &fields.named {
        refuse_renames(&field.attrs)?;
        let Some(ident) = &field.ident else {
            return Err(syn::Error::new_spanned(field, "Columns: unnamed field"));
        };
        let column = ident.unraw().to_string();
        let ty = &field.ty;
        columns.push(quote! {
            #m::Column {
                name: #column,
                ty: <#ty as #m::ColumnValue>::TYPE,
                nullable: <#ty as #m::ColumnValue>::NULLABLE,
            }
        });
        visits.push(quote! {
            <#ty as #m::ColumnValue>::visit(&self.#ident, visitor);
        });
    }
    Ok(quote! {
        impl #m::Columns for #name {
            const COLUMNS: &'static [#m::Column] = &[#(#columns),*];

            #[inline]
            fn visit_columns<V: #m::RowVisitor>(&self, visitor: &mut V) {
                #(#visits)*
            }
        }
    })
}

/// The serde options that would make the JSON key differ from the field (and column) name,
/// or drop a field from one format but not the other.
const REFUSED: &[&str] = &[
    "rename",
    "rename_all",
    "rename_all_fields",
    "flatten",
    "skip",
    "skip_serializing",
    "skip_deserializing",
];

fn refuse_renames(attrs: &[Attribute]) -> syn::Result<()> {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if REFUSED.contains(&key.as_str()) {
                return Err(meta.error(format!(
                    "Columns: serde({key}) would make the JSON key and the storage column \
                     differ; column names are the field names"
                )));
            }
            // Consume the option's value: `key = "..."` or `key(...)`.
            if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Lit>()?;
            } else if meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                content.parse::<TokenStream2>()?;
            }
            Ok(())
        })?;
    }
    Ok(())
}
