//! A simulated host: a generated project (arrays, tables, scripts, code cells), busy and idle
//! phases driven through the autosave policy, edits, an explicit save, a crash and the
//! recovery, printing each step with its report's figures.
//!
//! Run: `cargo run --release --example host [MiB]` (default 64 MiB, in a temporary directory).

#![expect(clippy::print_stdout, reason = "an example reports to its user")]

use autosave::sample::{DemoStep, run_demo};

fn print_step(step: &DemoStep) {
    println!("== {}", step.name);
    if let Some(r) = &step.report {
        let t = &r.tree;
        let snapshot = r
            .snapshot
            .map_or("none (unchanged)".to_owned(), |s| s.to_string());
        println!(
            "   snapshot {snapshot}: {} entries, {} skipped by token, {} hashed ({} bytes), {} new blobs, {} bytes written, {:.1} ms",
            t.entries,
            t.skipped_token,
            t.hashed,
            t.bytes_hashed,
            t.new_blobs,
            t.bytes_written,
            r.duration.as_secs_f64() * 1e3
        );
        if !r.removed.is_empty() {
            let freed = r.gc.map_or(0, |g| g.bytes_freed);
            println!(
                "   removed snapshots {:?}, gc freed {freed} bytes",
                r.removed.iter().map(|s| s.0).collect::<Vec<_>>()
            );
        }
    }
    let s = &step.stats;
    println!(
        "   store: {} snapshots, {} blobs, {} bytes stored for {} logical (dedup {:.2}x, compression {:.2}x)",
        s.snapshots,
        s.blobs,
        s.stored_bytes,
        s.logical_bytes,
        s.dedup_ratio(),
        s.compression_ratio()
    );
    println!("   {}", step.detail);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib = std::env::args().nth(1).map_or(Ok(64), |a| a.parse())?;
    let temp = tempfile::tempdir()?;
    let project = camino::Utf8PathBuf::try_from(temp.path().join("project"))?;
    println!("simulated project of about {mib} MiB in {project}");
    run_demo(&project, mib, print_step)?;
    Ok(())
}
