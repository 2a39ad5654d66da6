//! What a run measured: counts and latency histograms per transaction type, a per-second
//! timeline, and their summary as a table, a JSON report and an SVG chart.
//!
//! tpmC is the number of New-Order transactions completed in the measured interval per minute,
//! rolled-back ones included (they are completed business transactions, clause 2.4.2.3), the
//! same count that the per-type table shows as committed + rolled back.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::load::Scale;
use crate::txn::Kind;

/// Latencies are recorded in microseconds, up to an hour, at 3 significant digits.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// One transaction type's counts and latencies.
#[derive(Clone, Debug)]
pub struct TypeStats {
    /// Committed.
    pub committed: u64,
    /// Rolled back as required (New-Order only).
    pub rolled_back: u64,
    /// Failed (after retries).
    pub errors: u64,
    /// Retries after a serialization failure or deadlock.
    pub retries: u64,
    /// Latency of completed transactions (committed or rolled back), in microseconds.
    pub latency_us: Histogram<u64>,
}

impl TypeStats {
    fn new() -> TypeStats {
        TypeStats {
            committed: 0,
            rolled_back: 0,
            errors: 0,
            retries: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("constant bounds hdrhistogram accepts"),
        }
    }

    /// Committed and rolled back: the transactions that completed.
    pub fn completed(&self) -> u64 {
        self.committed + self.rolled_back
    }

    /// Records a completed transaction's latency.
    pub fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        let _ = self.latency_us.record(us);
    }
}

/// Everything a terminal (or all of them, merged) measured in the measured interval.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Per type, in [`Kind::ALL`] order.
    pub types: Vec<TypeStats>,
    /// Completed transactions per type in each second of the measured interval.
    pub timeline: Vec<[u64; 5]>,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

/// Distinct error messages kept.
const ERROR_SAMPLES: usize = 10;

impl Stats {
    /// Empty stats.
    pub fn new() -> Stats {
        Stats {
            types: Kind::ALL.iter().map(|_| TypeStats::new()).collect(),
            timeline: Vec::new(),
            error_samples: Vec::new(),
        }
    }

    /// One type's stats.
    pub fn of(&mut self, kind: Kind) -> &mut TypeStats {
        &mut self.types[kind.index()]
    }

    /// Counts a completion in second `second` of the measured interval.
    pub fn tick(&mut self, kind: Kind, second: usize) {
        if self.timeline.len() <= second {
            self.timeline.resize(second + 1, [0; 5]);
        }
        self.timeline[second][kind.index()] += 1;
    }

    /// Keeps an error message if it is new and there is room.
    pub fn error_sample(&mut self, message: String) {
        if self.error_samples.len() < ERROR_SAMPLES && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.types.iter_mut().zip(&other.types) {
            mine.committed += theirs.committed;
            mine.rolled_back += theirs.rolled_back;
            mine.errors += theirs.errors;
            mine.retries += theirs.retries;
            let _ = mine.latency_us.add(&theirs.latency_us);
        }
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), [0; 5]);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
        for sample in &other.error_samples {
            self.error_sample(sample.clone());
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// One transaction type in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TypeReport {
    /// Its name.
    pub name: String,
    /// Committed.
    pub committed: u64,
    /// Rolled back as required.
    pub rolled_back: u64,
    /// Failed.
    pub errors: u64,
    /// Retries after serialization failures or deadlocks.
    pub retries: u64,
    /// Completed per minute.
    pub per_minute: f64,
    /// Share of all completed transactions, in percent.
    pub share_pct: f64,
    /// Latency percentiles and mean, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// A run's report (also its JSON form).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The target, as given.
    pub target: String,
    /// A label for comparisons (side by side), or empty.
    pub label: String,
    /// interactive or procedures.
    pub mode: String,
    /// Warehouses used.
    pub warehouses: i64,
    /// Items in the database (100,000 in TPC-C; fewer in a divided test database).
    pub items: i64,
    /// Customers per district (3,000 in TPC-C).
    pub customers_per_district: i64,
    /// Terminals.
    pub terminals: usize,
    /// Keying and think times on.
    pub keying_think: bool,
    /// Warm-up, in seconds.
    pub warmup_s: f64,
    /// The measured interval, in seconds.
    pub measured_s: f64,
    /// New-Order transactions completed per minute.
    pub tpmc: f64,
    /// All transactions completed per minute.
    pub tpm_total: f64,
    /// Failed transactions, all types.
    pub errors: u64,
    /// Per type, in the specification's order.
    pub transactions: Vec<TypeReport>,
    /// Completed transactions per second of the measured interval, per type in the same order.
    pub timeline: Vec<[u64; 5]>,
    /// The first distinct error messages.
    pub error_samples: Vec<String>,
    /// The seed of the terminals' inputs.
    pub seed: u64,
}

/// A histogram value in milliseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    /// Summarises `stats` over a measured interval of `measured`.
    pub fn new(stats: &Stats, measured: Duration, header: ReportHeader) -> Report {
        let minutes = measured.as_secs_f64() / 60.0;
        let per_minute = |n: u64| if minutes > 0.0 { n as f64 / minutes } else { 0.0 };
        let total: u64 = stats.types.iter().map(TypeStats::completed).sum();
        let transactions: Vec<TypeReport> = Kind::ALL
            .iter()
            .zip(&stats.types)
            .map(|(kind, s)| {
                let h = &s.latency_us;
                let empty = h.is_empty();
                let q = |q: f64| if empty { 0.0 } else { ms(h.value_at_quantile(q)) };
                TypeReport {
                    name: kind.name().to_string(),
                    committed: s.committed,
                    rolled_back: s.rolled_back,
                    errors: s.errors,
                    retries: s.retries,
                    per_minute: per_minute(s.completed()),
                    share_pct: if total > 0 { 100.0 * s.completed() as f64 / total as f64 } else { 0.0 },
                    p50_ms: q(0.50),
                    p90_ms: q(0.90),
                    p99_ms: q(0.99),
                    max_ms: if empty { 0.0 } else { ms(h.max()) },
                    mean_ms: if empty { 0.0 } else { h.mean() / 1000.0 },
                }
            })
            .collect();
        Report {
            target: header.target,
            label: header.label,
            mode: header.mode,
            warehouses: header.warehouses,
            items: header.scale.items,
            customers_per_district: header.scale.customers,
            terminals: header.terminals,
            keying_think: header.keying_think,
            warmup_s: header.warmup.as_secs_f64(),
            measured_s: measured.as_secs_f64(),
            tpmc: per_minute(stats.types[Kind::NewOrder.index()].completed()),
            tpm_total: per_minute(total),
            errors: stats.types.iter().map(|s| s.errors).sum(),
            transactions,
            timeline: stats.timeline.clone(),
            error_samples: stats.error_samples.clone(),
            seed: header.seed,
        }
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "TPC-C on {} ({} mode, {} warehouse(s), {} terminal(s), {:.0} s measured after {:.0} s warm-up{})",
            self.target,
            self.mode,
            self.warehouses,
            self.terminals,
            self.measured_s,
            self.warmup_s,
            if self.keying_think { ", keying and think times" } else { "" }
        );
        if !(Scale { items: self.items, customers: self.customers_per_district }).is_tpcc() {
            let _ = writeln!(
                out,
                "test database, not TPC-C's cardinalities: {} items, {} customers per district",
                self.items, self.customers_per_district
            );
        }
        let _ = writeln!(
            out,
            "tpmC {:.1}   all transactions {:.1}/min   errors {}",
            self.tpmc, self.tpm_total, self.errors
        );
        let _ = writeln!(
            out,
            "{:<13} {:>9} {:>9} {:>7} {:>7} {:>10} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "transaction",
            "committed",
            "rollback",
            "errors",
            "retries",
            "per min",
            "mix %",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        for t in &self.transactions {
            let _ = writeln!(
                out,
                "{:<13} {:>9} {:>9} {:>7} {:>7} {:>10.1} {:>6.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                t.name,
                t.committed,
                t.rolled_back,
                t.errors,
                t.retries,
                t.per_minute,
                t.share_pct,
                t.p50_ms,
                t.p90_ms,
                t.p99_ms,
                t.max_ms
            );
        }
        if !self.error_samples.is_empty() {
            let _ = writeln!(out, "errors seen (first {}):", self.error_samples.len());
            for e in &self.error_samples {
                let _ = writeln!(out, "  {e}");
            }
        }
        out
    }
}

/// The run's settings that the report repeats.
#[derive(Clone, Debug)]
pub struct ReportHeader {
    /// The target, as given.
    pub target: String,
    /// A label, or empty.
    pub label: String,
    /// The mode's name.
    pub mode: String,
    /// Warehouses.
    pub warehouses: i64,
    /// Items and customers per district.
    pub scale: Scale,
    /// Terminals.
    pub terminals: usize,
    /// Keying and think times.
    pub keying_think: bool,
    /// Warm-up.
    pub warmup: Duration,
    /// Seed.
    pub seed: u64,
}

/// One system in a side-by-side comparison: the mean over its runs (rounds).
#[derive(Clone, Debug, Serialize)]
pub struct Compared {
    /// The system's label.
    pub label: String,
    /// Runs averaged.
    pub runs: usize,
    /// Mean tpmC.
    pub tpmc: f64,
    /// tpmC against the baseline's.
    pub tpmc_ratio: f64,
    /// Mean New-Order p50, p90 and p99 latency in ms.
    pub new_order_ms: [f64; 3],
    /// New-Order p90 against the baseline's.
    pub new_order_p90_ratio: f64,
    /// Mean Payment p90 latency in ms.
    pub payment_p90_ms: f64,
    /// Errors, all runs.
    pub errors: u64,
}

/// Compares reports grouped by label (in first-seen order) against the group labelled
/// `baseline` (default: the first).
pub fn compare(reports: &[Report], baseline: Option<&str>) -> Vec<Compared> {
    let mut labels: Vec<String> = Vec::new();
    for r in reports {
        let label = label_of(r);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    let mean = |xs: Vec<f64>| if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 };
    let mut out: Vec<Compared> = labels
        .iter()
        .map(|label| {
            let group: Vec<&Report> = reports.iter().filter(|r| &label_of(r) == label).collect();
            let no = |f: fn(&TypeReport) -> f64| mean(group.iter().map(|r| f(&r.transactions[0])).collect());
            Compared {
                label: label.clone(),
                runs: group.len(),
                tpmc: mean(group.iter().map(|r| r.tpmc).collect()),
                tpmc_ratio: 0.0,
                new_order_ms: [no(|t| t.p50_ms), no(|t| t.p90_ms), no(|t| t.p99_ms)],
                new_order_p90_ratio: 0.0,
                payment_p90_ms: mean(group.iter().map(|r| r.transactions[1].p90_ms).collect()),
                errors: group.iter().map(|r| r.errors).sum(),
            }
        })
        .collect();
    let base = baseline.and_then(|b| out.iter().position(|c| c.label == b)).unwrap_or(0);
    if let Some(b) = out.get(base).cloned() {
        for c in &mut out {
            c.tpmc_ratio = if b.tpmc > 0.0 { c.tpmc / b.tpmc } else { 0.0 };
            c.new_order_p90_ratio = if b.new_order_ms[1] > 0.0 { c.new_order_ms[1] / b.new_order_ms[1] } else { 0.0 };
        }
    }
    out
}

/// The ratio table of a comparison.
pub fn compare_table(rows: &[Compared]) -> String {
    let mut out = String::new();
    let base = rows.iter().find(|c| (c.tpmc_ratio - 1.0).abs() < 1e-12).map_or("", |c| c.label.as_str());
    let _ = writeln!(out, "ratios against {base}");
    let _ = writeln!(
        out,
        "{:<28} {:>4} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "system", "runs", "tpmC", "x tpmC", "NO p50", "NO p90", "NO p99", "x NO p90", "Pay p90", "errors"
    );
    for c in rows {
        let _ = writeln!(
            out,
            "{:<28} {:>4} {:>10.1} {:>8.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>7}",
            c.label,
            c.runs,
            c.tpmc,
            c.tpmc_ratio,
            c.new_order_ms[0],
            c.new_order_ms[1],
            c.new_order_ms[2],
            c.new_order_p90_ratio,
            c.payment_p90_ms,
            c.errors
        );
    }
    out
}

/// Colours of the transaction types in charts.
const COLOURS: [&str; 5] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A round axis maximum at or above `value`: 1, 2 or 5 times a power of ten.
pub fn nice_max(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|m| *m >= value).unwrap_or(10.0 * power)
}

/// An SVG chart of one or more reports: completed transactions per second over the measured
/// interval (one line per type and report), and p50/p90/p99 latency per type (bars).
pub fn chart_svg(reports: &[&Report]) -> String {
    let (width, height) = (1000.0, 760.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = match reports {
        [one] => format!("TPC-C on {} ({} mode): tpmC {:.1}", one.target, one.mode, one.tpmc),
        _ => "TPC-C side by side".to_string(),
    };
    let _ = writeln!(svg, r#"<text x="20" y="24" font-size="16" font-weight="bold">{}</text>"#, escape(&title));

    // Panel 1: throughput over time; one report: every type (colour by type); several: their
    // New-Orders (colour by report).
    let multi = reports.len() > 1;
    let kinds: &[Kind] = if multi { &[Kind::NewOrder] } else { &Kind::ALL };
    let colour = |kind: Kind, r_i: usize| if multi { COLOURS[r_i % COLOURS.len()] } else { COLOURS[kind.index()] };
    let (x0, y0, w, h) = (70.0, 60.0, 880.0, 260.0);
    let seconds = reports.iter().map(|r| r.timeline.len()).max().unwrap_or(0).max(1);
    let peak = reports
        .iter()
        .flat_map(|r| r.timeline.iter().flat_map(|s| kinds.iter().map(|k| s[k.index()])))
        .max()
        .unwrap_or(0);
    let y_max = nice_max(peak as f64);
    let _ = writeln!(
        svg,
        r#"<text x="{x0}" y="{}" font-weight="bold">{} per second</text>"#,
        y0 - 12.0,
        if multi { "New-Order transactions completed" } else { "Completed transactions" }
    );
    axes(&mut svg, x0, y0, w, h, y_max, seconds as f64, "s");
    for (r_i, report) in reports.iter().enumerate() {
        for &kind in kinds {
            let points: Vec<String> = report
                .timeline
                .iter()
                .enumerate()
                .map(|(s, counts)| {
                    let x = x0 + w * (s as f64 + 0.5) / seconds as f64;
                    let y = y0 + h - h * counts[kind.index()] as f64 / y_max;
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                colour(kind, r_i),
                points.join(" ")
            );
        }
    }
    // Legend: the types, or the reports.
    let names: Vec<String> = if multi {
        reports.iter().map(|r| label_of(r)).collect()
    } else {
        Kind::ALL.iter().map(|k| k.name().to_string()).collect()
    };
    let mut lx = x0;
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y0 + h + 28.0,
            COLOURS[i % COLOURS.len()],
            lx + 16.0,
            y0 + h + 38.0,
            escape(name)
        );
        lx += if multi { 176.0 } else { 120.0 };
    }

    // Panel 2: latency percentiles per type (and report).
    let (x0, y0, w, h) = (70.0, 470.0, 880.0, 230.0);
    let worst = reports.iter().flat_map(|r| r.transactions.iter().map(|t| t.p99_ms)).fold(0.0, f64::max);
    let y_max = nice_max(worst);
    let _ = writeln!(
        svg,
        r#"<text x="{x0}" y="{}" font-weight="bold">Latency by transaction type (p50 / p90 / p99, ms)</text>"#,
        y0 - 12.0
    );
    axes(&mut svg, x0, y0, w, h, y_max, 0.0, "");
    let group_w = w / Kind::ALL.len() as f64;
    let bars = 3 * reports.len();
    let bar_w = (group_w - 20.0) / bars as f64;
    for kind in Kind::ALL {
        let gx = x0 + group_w * kind.index() as f64 + 10.0;
        for (r_i, report) in reports.iter().enumerate() {
            let t = &report.transactions[kind.index()];
            for (q_i, value) in [t.p50_ms, t.p90_ms, t.p99_ms].iter().enumerate() {
                let bh = h * value / y_max;
                let x = gx + bar_w * (3 * r_i + q_i) as f64;
                let opacity = [1.0, 0.65, 0.35][q_i];
                let _ = writeln!(
                    svg,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}" fill-opacity="{opacity}"><title>{} {} p{}: {value:.2} ms</title></rect>"#,
                    y0 + h - bh,
                    (bar_w - 1.0).max(1.0),
                    colour(kind, r_i),
                    escape(&label_of(report)),
                    kind.name(),
                    [50, 90, 99][q_i]
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            gx + (group_w - 20.0) / 2.0,
            y0 + h + 16.0,
            kind.name()
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{x0}" y="{}" fill="#555">Bars per type: p50 (solid), p90, p99 (lightest){}.</text>"##,
        y0 + h + 36.0,
        if multi { ", for each system in legend order and colour" } else { "" }
    );
    svg.push_str("</svg>\n");
    svg
}

fn label_of(report: &Report) -> String {
    if report.label.is_empty() { format!("{} ({})", report.target, report.mode) } else { report.label.clone() }
}

/// Axes with a labelled y scale (5 ticks) and, if `x_max` > 0, an x scale.
#[allow(clippy::too_many_arguments)]
fn axes(svg: &mut String, x0: f64, y0: f64, w: f64, h: f64, y_max: f64, x_max: f64, x_unit: &str) {
    let _ = writeln!(svg, r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##);
    for i in 0..=5 {
        let v = y_max * i as f64 / 5.0;
        let y = y0 + h - h * i as f64 / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + w,
            x0 - 6.0,
            y + 4.0,
            trim_number(v)
        );
    }
    if x_max > 0.0 {
        for i in 0..=5 {
            let v = x_max * i as f64 / 5.0;
            let x = x0 + w * i as f64 / 5.0;
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}{x_unit}</text>"#,
                y0 + h + 16.0,
                trim_number(v)
            );
        }
    }
}

fn trim_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { format!("{v:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ReportHeader {
        ReportHeader {
            target: "postgres://x".into(),
            label: String::new(),
            mode: "procedures".into(),
            warehouses: 1,
            scale: Scale::TPCC,
            terminals: 2,
            keying_think: false,
            warmup: Duration::from_secs(5),
            seed: 1,
        }
    }

    #[test]
    fn tpmc_counts_completed_new_orders_per_minute() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for i in 0..90u64 {
            let s = if i % 2 == 0 { &mut a } else { &mut b };
            let no = s.of(Kind::NewOrder);
            if i == 0 {
                no.rolled_back += 1
            } else {
                no.committed += 1
            }
            no.record(Duration::from_millis(i + 1));
            s.tick(Kind::NewOrder, (i / 3) as usize);
        }
        for _ in 0..10 {
            b.of(Kind::Payment).committed += 1;
            b.of(Kind::Payment).record(Duration::from_millis(100));
        }
        b.of(Kind::Delivery).errors += 2;
        b.error_sample("boom".into());
        b.error_sample("boom".into());
        a.merge(&b);
        let report = Report::new(&a, Duration::from_secs(30), header());
        // 90 New-Orders (one rolled back) in half a minute.
        assert!((report.tpmc - 180.0).abs() < 1e-9, "{}", report.tpmc);
        assert!((report.tpm_total - 200.0).abs() < 1e-9);
        assert_eq!(report.errors, 2);
        assert_eq!(report.error_samples, vec!["boom".to_string()]);
        let no = &report.transactions[0];
        assert_eq!((no.committed, no.rolled_back), (89, 1));
        assert!((no.share_pct - 90.0).abs() < 1e-9);
        // Latencies 1..=90 ms: p50 is 45 ms, p90 81 ms, p99 90 ms (within the histogram's precision).
        assert!((no.p50_ms - 45.0).abs() < 0.1, "{}", no.p50_ms);
        assert!((no.p90_ms - 81.0).abs() < 0.1, "{}", no.p90_ms);
        assert!((no.p99_ms - 90.0).abs() < 0.1, "{}", no.p99_ms);
        assert!((no.mean_ms - 45.5).abs() < 0.1, "{}", no.mean_ms);
        assert_eq!(report.timeline.len(), 30);
        assert!(report.timeline.iter().all(|s| s[0] == 3));
        let empty = &report.transactions[2];
        assert_eq!((empty.p50_ms, empty.per_minute), (0.0, 0.0));
        let table = report.table();
        assert!(table.contains("tpmC 180.0"), "{table}");
        let svg = chart_svg(&[&report]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn comparisons_average_rounds_and_divide_by_the_baseline() {
        let mut stats = Stats::new();
        stats.of(Kind::NewOrder).committed = 60;
        stats.of(Kind::NewOrder).record(Duration::from_millis(10));
        let mut base = Report::new(&stats, Duration::from_secs(60), header());
        base.label = "single".into();
        let mut other = base.clone();
        other.label = "barista".into();
        other.tpmc = 30.0;
        let mut other2 = other.clone();
        other2.tpmc = 50.0;
        let rows = compare(&[base, other, other2], Some("single"));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].label.as_str(), rows[0].tpmc, rows[0].tpmc_ratio), ("single", 60.0, 1.0));
        assert_eq!((rows[1].runs, rows[1].tpmc), (2, 40.0));
        assert!((rows[1].tpmc_ratio - 40.0 / 60.0).abs() < 1e-12);
        assert!(compare_table(&rows).contains("ratios against single"));
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(10.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(420.0), 500.0);
        assert_eq!(nice_max(0.03), 0.05);
    }
}
