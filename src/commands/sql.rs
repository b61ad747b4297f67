//! `giamsat sql`: one read-only statement over the tables, printed as a table, CSV or JSON.

use std::io::Write;
use std::path::Path;

use clap::Args;

use crate::fail::{bad, classify_query};
use crate::open::open_wh;

// the options of `sql`
#[derive(Args)]
pub struct SqlArgs {
    pub sql: String,
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub async fn run(data: &Path, args: SqlArgs) -> anyhow::Result<()> {
    let SqlArgs { sql, format } = args;
    let wh = open_wh(data)?;
    let ctx = giamsat_queries::session(&wh)
        .await
        .map_err(classify_query)?;
    // whoever can read the data directory is its administrator
    giamsat_api::access::register(&ctx, &wh)
        .await
        .map_err(classify_query)?;
    let batches = giamsat_queries::run_sql(&ctx, &sql)
        .await
        .map_err(classify_query)?;
    print_batches(&batches, &format)?;

    Ok(())
}

fn print_batches(batches: &[datafusion_arrow::RecordBatch], format: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    match format {
        "table" => {
            writeln!(
                out,
                "{}",
                datafusion_arrow::pretty::pretty_format_batches(batches)?
            )?;
        }
        "csv" => {
            let mut w = datafusion_arrow::csv::Writer::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        "json" => {
            let mut w = datafusion_arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        o => return Err(bad(format!("--format phải là table, csv hoặc json: {o}"))),
    }
    Ok(())
}

mod datafusion_arrow {
    pub use giamsat_queries::arrow::array::RecordBatch;
    pub use giamsat_queries::arrow::util::pretty;
    pub use giamsat_queries::arrow::{csv, json};
}
