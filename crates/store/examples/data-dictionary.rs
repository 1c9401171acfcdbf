//! Print the data dictionary (`datasets/README.md`) generated from the model's rustdoc.
//!
//! `cargo run -p mxray-store --example data-dictionary > datasets/README.md`

fn main() {
    print!("{}", mxray_store::data_dictionary());
}
