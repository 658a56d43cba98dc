//! Output helpers: aligned tables, byte sizes, times, key ids.

use std::io::Write;
use std::time::SystemTime;

/// Columns padded to their widest cell.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = Vec::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                match widths.get_mut(i) {
                    Some(width) => *width = (*width).max(cell.chars().count()),
                    None => widths.push(cell.chars().count()),
                }
            }
        }
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            writeln!(out, "{}", cells.join("  ").trim_end())?;
        }
        Ok(())
    }
}

/// `1234567` -> `1234567 B (1.2 MiB)`.
#[expect(clippy::cast_precision_loss, reason = "a size for display")]
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{n} B ({value:.1} {unit})")
}

/// RFC 3339, UTC, microseconds.
pub(crate) fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// A key id as record headers hold it, in hex.
pub(crate) fn key_id(id: u32) -> String {
    format!("{id:08x}")
}
