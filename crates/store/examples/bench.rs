//! Store benchmark: stream N `smtp_probe` records into one sink and report rows/s and peak RSS.
//!
//! ```text
//! cargo run --release -p mxray-store --example bench -- null|parquet|jsonl|clickhouse ROWS [DIR|URL]
//! ```
//! Run through `scripts/bench-store`, which starts a private ClickHouse on loopback.

use std::time::Instant;

use mxray_model::{examples, Record};
use mxray_store::*;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn probe(i: u64) -> Record {
    let mut p = examples::smtp_probe();
    p.ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    p.port = 25 + (i >> 24) as u16;
    p.total_ms = (i % 100_000) as u32;
    Record::from(p)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench null|parquet|jsonl|clickhouse ROWS [DIR|URL]";
    let kind = args.get(1).ok_or(usage)?.as_str();
    let rows: u64 = args.get(2).ok_or(usage)?.parse()?;
    let target = args.get(3).cloned().unwrap_or_default();
    let mut sink: Box<dyn Sink> = match kind {
        "null" => Box::new(NullSink::new()),
        "parquet" => Box::new(ParquetSink::create(&target, ParquetOptions::default())?),
        "jsonl" => Box::new(JsonlSink::create(std::path::Path::new(&target))?),
        "clickhouse" => {
            let mut c = ClickHouseConfig::from_url(&target)?;
            c.spill_dir = std::env::temp_dir().join("mxray-bench-spill");
            Box::new(ClickHouseSink::connect(c).await?)
        }
        _ => return Err(usage.into()),
    };
    let start = Instant::now();
    for i in 0..rows {
        sink.write(probe(i)).await?;
    }
    let report = sink.close().await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"sink\":\"{kind}\",\"rows\":{rows},\"seconds\":{secs:.2},\"rows_per_s\":{:.0},\
         \"peak_rss_mib\":{:.0},\"stored\":{},\"spilled\":{}}}",
        rows as f64 / secs,
        peak_rss_mib(),
        report.total_rows(),
        report.total_spilled()
    );
    Ok(())
}
