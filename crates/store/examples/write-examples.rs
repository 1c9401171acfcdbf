//! Write a Parquet result directory holding the model's example records (one of each type), for
//! the reader checks in `scripts/checks.d/store-parquet-readers`.
//!
//! `cargo run -p mxray-store --example write-examples -- DIR`

use mxray_store::{ParquetOptions, ParquetSink};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: write-examples DIR")?;
    let mut sink = ParquetSink::create(dir, ParquetOptions::default())?;
    for r in mxray_model::examples::all() {
        sink.write_sync(&r)?;
    }
    sink.close_sync()?;
    Ok(())
}
