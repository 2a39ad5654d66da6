//! `barista-tpcc load`: creates the schema and the stored procedures, and fills the nine tables
//! with TPC-C's initial population (clause 4.3.3.1) for N warehouses, in parallel.
//!
//! Every value comes from the client as a literal in multi-row `INSERT ... VALUES` statements of
//! bounded size (Barista puts one statement in one log slot, at most about 900 KB, and refuses
//! `COPY`), so every replica stores exactly the same rows. The work is cut into jobs (items in
//! slices; per warehouse its districts, stock slices, and per district its customers with their
//! history and its orders with their lines and new orders); each job has its own seed, so the
//! data depends only on `--seed`, never on which worker ran what.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::random::{Cents, Constants, Rng, basis_points, last_name};
use crate::schema;
use crate::target::{Session, Target, Value};

/// Items (clause 4.3.3.1: a fixed 100,000).
pub const ITEMS: i64 = 100_000;
/// Districts per warehouse.
pub const DISTRICTS: i64 = 10;
/// Customers per district (and orders per district at load).
pub const CUSTOMERS: i64 = 3_000;

/// The database's size besides its warehouses: TPC-C's (the default), or divided for quick
/// tests. Stored in `tpcc_meta` by `load`, read by `run` and `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Items (and stock rows per warehouse): 100,000.
    pub items: i64,
    /// Customers per district, and orders per district at load: 3,000.
    pub customers: i64,
}

impl Scale {
    /// TPC-C's cardinalities.
    pub const TPCC: Scale = Scale { items: ITEMS, customers: CUSTOMERS };

    /// TPC-C's cardinalities divided by `divisor` (1: TPC-C's own). Anything but 1 is not a
    /// conformant database: it exists so that a test can load a Barista cluster in seconds.
    pub fn divided(divisor: i64) -> Scale {
        let divisor = divisor.clamp(1, 100);
        Scale { items: ITEMS / divisor, customers: CUSTOMERS / divisor }
    }

    /// Orders per district at load (one per customer).
    pub fn orders(&self) -> i64 {
        self.customers
    }

    /// The first undelivered order of each district at load: 2101 of 3000, the last 30% are
    /// new orders (clause 4.3.3.1).
    pub fn first_new_order(&self) -> i64 {
        self.customers - (self.customers * 3) / 10 + 1
    }

    /// Distinct customer last names: numbers 0..names-1 (1000, or fewer customers).
    pub fn names(&self) -> i64 {
        self.customers.min(1000)
    }

    /// Whether these are TPC-C's cardinalities.
    pub fn is_tpcc(&self) -> bool {
        *self == Scale::TPCC
    }
}

/// How `load` runs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Warehouses to load.
    pub warehouses: i64,
    /// Parallel sessions.
    pub workers: usize,
    /// Seed of all generated data.
    pub seed: u64,
    /// Longest INSERT statement, in bytes.
    pub statement_bytes: usize,
    /// Install the stored procedures of procedures mode.
    pub procedures: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// The size besides warehouses.
    pub scale: Scale,
}

/// One unit of loading work.
#[derive(Clone, Copy, Debug)]
enum Job {
    /// Items `from..=to`.
    Items(i64, i64),
    /// A warehouse row and its ten districts.
    Warehouse(i64),
    /// Stock rows of warehouse `.0` for items `.1..=.2`.
    Stock(i64, i64, i64),
    /// A district's customers and their history rows.
    Customers(i64, i64),
    /// A district's orders, order lines and new orders.
    Orders(i64, i64),
}

impl Job {
    /// A seed for this job alone.
    fn seed(&self, seed: u64) -> u64 {
        let (kind, a, b) = match *self {
            Job::Items(from, _) => (1, from, 0),
            Job::Warehouse(w) => (2, w, 0),
            Job::Stock(w, from, _) => (3, w, from),
            Job::Customers(w, d) => (4, w, d),
            Job::Orders(w, d) => (5, w, d),
        };
        let mut rng = Rng::new(seed ^ (kind << 56) ^ ((a as u64) << 20) ^ b as u64);
        rng.next_u64()
    }

    /// Rows it inserts (order lines estimated at their mean of 10 per order).
    fn rows(&self, scale: &Scale) -> u64 {
        let orders = scale.orders();
        match *self {
            Job::Items(from, to) | Job::Stock(_, from, to) => (to - from + 1) as u64,
            Job::Warehouse(_) => 1 + DISTRICTS as u64,
            Job::Customers(..) => 2 * scale.customers as u64,
            Job::Orders(..) => (orders + 10 * orders + (orders - scale.first_new_order() + 1)) as u64,
        }
    }
}

/// Items and stock rows per job: small enough to spread over the workers.
const SLICE: i64 = 20_000;

fn jobs(warehouses: i64, scale: &Scale) -> Vec<Job> {
    let mut jobs = Vec::new();
    let items = scale.items;
    let slices = |f: &mut dyn FnMut(i64, i64)| {
        let mut from = 1;
        while from <= items {
            f(from, (from + SLICE - 1).min(items));
            from += SLICE;
        }
    };
    slices(&mut |from, to| jobs.push(Job::Items(from, to)));
    for w in 1..=warehouses {
        jobs.push(Job::Warehouse(w));
        for d in 1..=DISTRICTS {
            jobs.push(Job::Customers(w, d));
            jobs.push(Job::Orders(w, d));
        }
        slices(&mut |from, to| jobs.push(Job::Stock(w, from, to)));
    }
    jobs
}

/// A timestamp literal in UTC, to the second: the "current date and time" of the population.
pub fn utc_timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).format("%Y-%m-%d %H:%M:%S+00").to_string()
}

/// Quotes text as an SQL string literal.
fn quote(out: &mut String, text: &str) {
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
}

/// Builds multi-row INSERTs for one table and sends each once it reaches the size limit.
struct Inserter<'a> {
    session: &'a mut dyn Session,
    head: String,
    sql: String,
    rows: u64,
    limit: usize,
    progress: &'a ProgressBar,
}

impl<'a> Inserter<'a> {
    fn new(session: &'a mut dyn Session, table: &str, columns: &str, limit: usize, progress: &'a ProgressBar) -> Self {
        let head = format!("INSERT INTO {table} ({columns}) VALUES ");
        Inserter { session, sql: head.clone(), head, rows: 0, limit, progress }
    }

    /// Adds one row; `write` appends its comma-separated values.
    fn row(&mut self, write: impl FnOnce(&mut Row)) -> anyhow::Result<()> {
        if self.rows > 0 {
            self.sql.push(',');
        }
        self.sql.push('(');
        let mut row = Row { out: &mut self.sql, first: true };
        write(&mut row);
        self.sql.push(')');
        self.rows += 1;
        if self.sql.len() >= self.limit {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = std::mem::replace(&mut self.sql, self.head.clone());
        let rows = std::mem::take(&mut self.rows);
        self.session.execute(&sql, &[]).with_context(|| {
            format!("{} ({rows} rows, {} bytes)", self.head.trim_end_matches(" VALUES "), sql.len())
        })?;
        self.progress.inc(rows);
        Ok(())
    }
}

/// One row's values being written.
struct Row<'a> {
    out: &'a mut String,
    first: bool,
}

impl Row<'_> {
    fn sep(&mut self) {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(',');
        }
    }

    fn int(&mut self, value: i64) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{value}");
        self
    }

    /// A literal that needs no quotes (a decimal, NULL).
    fn raw(&mut self, value: impl std::fmt::Display) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{value}");
        self
    }

    fn text(&mut self, value: &str) -> &mut Self {
        self.sep();
        quote(self.out, value);
        self
    }
}

/// Address columns: street 1, street 2, city, state, zip (clause 4.3.3.1).
fn address(row: &mut Row, rng: &mut Rng) {
    let state: String = (0..2).map(|_| char::from(b'A' + rng.uniform(0, 25) as u8)).collect();
    row.text(&rng.astring(10, 20)).text(&rng.astring(10, 20)).text(&rng.astring(10, 20)).text(&state).text(&rng.zip());
}

/// Runs one job on `session`.
fn run_job(
    job: Job,
    session: &mut dyn Session,
    opts: &LoadOptions,
    constants: &Constants,
    now: &str,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut rng = Rng::new(job.seed(opts.seed));
    let limit = opts.statement_bytes;
    let scale = opts.scale;
    let (orders, first_new_order) = (scale.orders(), scale.first_new_order());
    match job {
        Job::Items(from, to) => {
            let mut ins = Inserter::new(session, "item", "i_id, i_im_id, i_name, i_price, i_data", limit, progress);
            for i in from..=to {
                ins.row(|r| {
                    r.int(i)
                        .int(rng.uniform(1, 10_000))
                        .text(&rng.astring(14, 24))
                        .raw(rng.cents(100, 10_000))
                        .text(&rng.data_with_original());
                })?;
            }
            ins.flush()
        }
        Job::Warehouse(w) => {
            let mut ins = Inserter::new(
                session,
                "warehouse",
                "w_id, w_name, w_street_1, w_street_2, w_city, w_state, w_zip, w_tax, w_ytd",
                limit,
                progress,
            );
            ins.row(|r| {
                r.int(w).text(&rng.astring(6, 10));
                address(r, &mut rng);
                // 300,000.00: the initial history's 10.00 per customer (conditions 8 and 9).
                r.raw(basis_points(rng.uniform(0, 2000))).raw(Cents(DISTRICTS * scale.customers * 1000));
            })?;
            ins.flush()?;
            let mut ins = Inserter::new(
                session,
                "district",
                "d_id, d_w_id, d_name, d_street_1, d_street_2, d_city, d_state, d_zip, d_tax, d_ytd, d_next_o_id",
                limit,
                progress,
            );
            for d in 1..=DISTRICTS {
                ins.row(|r| {
                    r.int(d).int(w).text(&rng.astring(6, 10));
                    address(r, &mut rng);
                    r.raw(basis_points(rng.uniform(0, 2000))).raw(Cents(scale.customers * 1000)).int(orders + 1);
                })?;
            }
            ins.flush()
        }
        Job::Stock(w, from, to) => {
            let mut ins = Inserter::new(
                session,
                "stock",
                "s_i_id, s_w_id, s_quantity, s_dist_01, s_dist_02, s_dist_03, s_dist_04, s_dist_05, s_dist_06, \
                 s_dist_07, s_dist_08, s_dist_09, s_dist_10, s_ytd, s_order_cnt, s_remote_cnt, s_data",
                limit,
                progress,
            );
            for i in from..=to {
                ins.row(|r| {
                    r.int(i).int(w).int(rng.uniform(10, 100));
                    for _ in 0..10 {
                        r.text(&rng.astring(24, 24));
                    }
                    r.int(0).int(0).int(0).text(&rng.data_with_original());
                })?;
            }
            ins.flush()
        }
        Job::Customers(w, d) => {
            let mut ins = Inserter::new(
                session,
                "customer",
                "c_id, c_d_id, c_w_id, c_first, c_middle, c_last, c_street_1, c_street_2, c_city, c_state, c_zip, \
                 c_phone, c_since, c_credit, c_credit_lim, c_discount, c_balance, c_ytd_payment, c_payment_cnt, \
                 c_delivery_cnt, c_data",
                limit,
                progress,
            );
            for c in 1..=scale.customers {
                // The first 1,000 customers cover every name once; the others are drawn with
                // NURand and the load-time C (clause 4.3.3.1).
                let name =
                    if c <= scale.names() { c - 1 } else { rng.last_name_number(constants.c_last, scale.names()) };
                ins.row(|r| {
                    r.int(c).int(d).int(w).text(&rng.astring(8, 16)).text("OE").text(&last_name(name));
                    address(r, &mut rng);
                    r.text(&rng.nstring(16, 16))
                        .text(now)
                        .text(if rng.uniform(1, 100) <= 10 { "BC" } else { "GC" })
                        .raw("50000.00")
                        .raw(basis_points(rng.uniform(0, 5000)))
                        .raw("-10.00")
                        .raw("10.00")
                        .int(1)
                        .int(0)
                        .text(&rng.astring(300, 500));
                })?;
            }
            ins.flush()?;
            let mut ins = Inserter::new(
                session,
                "history",
                "h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, h_amount, h_data",
                limit,
                progress,
            );
            for c in 1..=scale.customers {
                ins.row(|r| {
                    r.int(c).int(d).int(w).int(d).int(w).text(now).raw("10.00").text(&rng.astring(12, 24));
                })?;
            }
            ins.flush()
        }
        Job::Orders(w, d) => {
            // O_C_ID: a random permutation of the customers (clause 4.3.3.1).
            let mut customers: Vec<i64> = (1..=scale.customers).collect();
            for i in (1..customers.len()).rev() {
                let j = rng.uniform(0, i as i64) as usize;
                customers.swap(i, j);
            }
            let line_counts: Vec<i64> = (0..orders).map(|_| rng.uniform(5, 15)).collect();
            let mut ins = Inserter::new(
                session,
                "orders",
                "o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, o_ol_cnt, o_all_local",
                limit,
                progress,
            );
            for o in 1..=orders {
                ins.row(|r| {
                    r.int(o).int(d).int(w).int(customers[(o - 1) as usize]).text(now);
                    if o < first_new_order {
                        r.int(rng.uniform(1, 10))
                    } else {
                        r.raw("NULL")
                    };
                    r.int(line_counts[(o - 1) as usize]).int(1);
                })?;
            }
            ins.flush()?;
            let mut ins = Inserter::new(
                session,
                "order_line",
                "ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_delivery_d, ol_quantity, \
                 ol_amount, ol_dist_info",
                limit,
                progress,
            );
            let mut lines = 0;
            for o in 1..=orders {
                for n in 1..=line_counts[(o - 1) as usize] {
                    let delivered = o < first_new_order;
                    ins.row(|r| {
                        r.int(o).int(d).int(w).int(n).int(rng.uniform(1, scale.items)).int(w);
                        if delivered {
                            r.text(now)
                        } else {
                            r.raw("NULL")
                        };
                        r.int(5);
                        if delivered {
                            r.raw("0.00")
                        } else {
                            r.raw(rng.cents(1, 999_999))
                        };
                        r.text(&rng.astring(24, 24));
                    })?;
                    lines += 1;
                }
            }
            ins.flush()?;
            // The estimate counted 10 lines per order.
            let estimate = 10 * orders as u64;
            if lines > estimate {
                progress.inc_length(lines - estimate);
            } else {
                progress.set_length(progress.length().unwrap_or(0).saturating_sub(estimate - lines));
            }
            let mut ins = Inserter::new(session, "new_order", "no_o_id, no_d_id, no_w_id", limit, progress);
            for o in first_new_order..=orders {
                ins.row(|r| {
                    r.int(o).int(d).int(w);
                })?;
            }
            ins.flush()
        }
    }
}

/// What `load` did.
#[derive(Clone, Debug)]
pub struct LoadSummary {
    /// Rows inserted.
    pub rows: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The load-time NURand constants, as stored in `tpcc_meta`.
    pub constants: Constants,
}

/// Creates the schema (dropping a previous one), installs the procedures and loads the data.
pub fn load(target: &Target, opts: &LoadOptions) -> anyhow::Result<LoadSummary> {
    anyhow::ensure!(opts.warehouses >= 1, "--warehouses must be at least 1");
    let started = Instant::now();
    let constants = Constants::random(&mut Rng::new(opts.seed));
    let now = utc_timestamp(SystemTime::now());
    let mut session = target.connect().with_context(|| format!("connecting to {}", target.describe()))?;
    for sql in schema::drop_statements().iter().map(String::as_str).chain(schema::CREATE.iter().copied()) {
        session.execute(sql, &[]).with_context(|| format!("schema: {}", first_line(sql)))?;
    }
    if opts.procedures {
        install_procedures(session.as_mut())?;
    }
    let meta = [
        ("c_last", constants.c_last),
        ("c_id", constants.c_id),
        ("ol_i_id", constants.ol_i_id),
        ("warehouses", opts.warehouses),
        ("items", opts.scale.items),
        ("customers", opts.scale.customers),
    ];
    for (name, value) in meta {
        session
            .execute(
                "INSERT INTO tpcc_meta (name, value) VALUES ($1, $2)",
                &[Value::Text(name.into()), Value::Int(value)],
            )
            .context("storing the load-time constants")?;
    }

    anyhow::ensure!(opts.scale.customers >= 10 && opts.scale.items >= 100, "scale too small: {:?}", opts.scale);
    let jobs = jobs(opts.warehouses, &opts.scale);
    let total: u64 = jobs.iter().map(|j| j.rows(&opts.scale)).sum();
    let progress = if opts.progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    progress.set_length(total);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} rows, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<Job>>());
    let workers = opts.workers.clamp(1, 64);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let result = (|| -> anyhow::Result<()> {
                    let mut session = target.connect().context("connecting a load worker")?;
                    loop {
                        if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                            return Ok(());
                        }
                        let Some(job) = queue.lock().ok().and_then(|mut q| q.pop_front()) else { return Ok(()) };
                        run_job(job, session.as_mut(), opts, &constants, &now, &progress)
                            .with_context(|| format!("loading {job:?}"))?;
                    }
                })();
                if let Err(e) = result
                    && let Ok(mut f) = failure.lock()
                {
                    f.get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        progress.abandon();
        return Err(e);
    }
    progress.finish();
    // Fresh planner statistics, as any loader leaves them (ANALYZE is replicated like the rest).
    session.execute("ANALYZE", &[]).context("ANALYZE after the load")?;
    Ok(LoadSummary { rows: progress.position(), elapsed: started.elapsed(), constants })
}

/// Creates (or replaces) the stored procedures of procedures mode.
pub fn install_procedures(session: &mut dyn Session) -> anyhow::Result<()> {
    for (name, args, create) in schema::PROCEDURES {
        session
            .execute(&format!("DROP FUNCTION IF EXISTS {name}({args})"), &[])
            .with_context(|| format!("dropping {name}"))?;
        session.execute(create, &[]).with_context(|| format!("creating {name}"))?;
    }
    Ok(())
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_time() {
        assert_eq!(utc_timestamp(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00+00");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(utc_timestamp(t), "2026-11-18 11:06:40+00");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29 00:00:00+00");
    }

    #[test]
    fn jobs_cover_the_cardinalities_of_clause_4_3() {
        let jobs = jobs(2, &Scale::TPCC);
        let items: i64 = jobs.iter().map(|j| if let Job::Items(a, b) = j { b - a + 1 } else { 0 }).sum();
        let stock: i64 = jobs.iter().map(|j| if let Job::Stock(_, a, b) = j { b - a + 1 } else { 0 }).sum();
        assert_eq!(items, ITEMS);
        assert_eq!(stock, 2 * ITEMS);
        assert_eq!(jobs.iter().filter(|j| matches!(j, Job::Customers(..))).count(), 20);
        assert_eq!(jobs.iter().filter(|j| matches!(j, Job::Orders(..))).count(), 20);
        assert_eq!(jobs.iter().filter(|j| matches!(j, Job::Warehouse(..))).count(), 2);
    }

    #[test]
    fn scales_keep_the_shape_of_a_district() {
        let tpcc = Scale::divided(1);
        assert!(tpcc.is_tpcc());
        assert_eq!((tpcc.orders(), tpcc.first_new_order(), tpcc.names()), (3000, 2101, 1000));
        let small = Scale::divided(10);
        assert_eq!((small.items, small.customers), (10_000, 300));
        assert_eq!((small.first_new_order(), small.names()), (211, 300));
        assert!(!small.is_tpcc());
    }

    #[test]
    fn literals_are_quoted() {
        let mut out = String::new();
        quote(&mut out, "it's");
        assert_eq!(out, "'it''s'");
    }
}
