//! The five TPC-C transactions: their inputs (clauses 2.4.1, 2.5.1, 2.6.1, 2.7.1, 2.8.1) and
//! how each runs in the two modes.
//!
//! - Interactive: `BEGIN`, one statement per call, `COMMIT` (or `ROLLBACK`), the way an
//!   application with a client-side transaction talks to its database.
//! - Procedures: one `SELECT tpcc_...(...)` per transaction, autocommit, running the plpgsql
//!   functions of [`crate::schema::PROCEDURES`].
//!
//! Both modes send the same SQL to PostgreSQL and to Barista.

use crate::load::{DISTRICTS, Scale};
use crate::random::{Cents, Constants, Rng, last_name};
use crate::schema::ITEM_NOT_VALID;
use crate::target::{DbError, Rows, Session, Value};

/// The transaction types, in the order of every per-type table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// New-Order (45%).
    NewOrder,
    /// Payment (43%).
    Payment,
    /// Order-Status (4%).
    OrderStatus,
    /// Delivery (4%).
    Delivery,
    /// Stock-Level (4%).
    StockLevel,
}

impl Kind {
    /// All types.
    pub const ALL: [Kind; 5] = [Kind::NewOrder, Kind::Payment, Kind::OrderStatus, Kind::Delivery, Kind::StockLevel];

    /// The share of each type in a deck of 100 (clause 5.2.3: at least 43% Payment and 4% each
    /// of the three others; New-Order is the rest).
    pub fn cards(self) -> usize {
        match self {
            Kind::NewOrder => 45,
            Kind::Payment => 43,
            Kind::OrderStatus | Kind::Delivery | Kind::StockLevel => 4,
        }
    }

    /// Its index in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name as the specification writes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NewOrder => "New-Order",
            Kind::Payment => "Payment",
            Kind::OrderStatus => "Order-Status",
            Kind::Delivery => "Delivery",
            Kind::StockLevel => "Stock-Level",
        }
    }

    /// Keying time and mean think time in seconds (clauses 5.2.5.7 and 5.2.5.4).
    pub fn keying_and_think_s(self) -> (f64, f64) {
        match self {
            Kind::NewOrder => (18.0, 12.0),
            Kind::Payment => (3.0, 12.0),
            Kind::OrderStatus => (2.0, 10.0),
            Kind::Delivery => (2.0, 5.0),
            Kind::StockLevel => (2.0, 5.0),
        }
    }
}

/// How transactions talk to the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BEGIN, one statement per call, COMMIT.
    Interactive,
    /// One stored-procedure call per transaction.
    Procedures,
}

/// How a transaction ended (errors are the `Err` of [`Terminal::execute`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed.
    Committed,
    /// Rolled back as the specification requires (New-Order with an unused item number).
    RolledBack,
}

/// A card deck of transaction types, reshuffled when used up: the mix is exact over every 100.
#[derive(Clone, Debug)]
pub struct Deck {
    cards: Vec<Kind>,
    next: usize,
}

impl Deck {
    /// A full deck.
    pub fn new() -> Deck {
        let cards = Kind::ALL.iter().flat_map(|k| std::iter::repeat_n(*k, k.cards())).collect();
        Deck { cards, next: usize::MAX }
    }

    /// The next transaction type.
    pub fn draw(&mut self, rng: &mut Rng) -> Kind {
        if self.next >= self.cards.len() {
            for i in (1..self.cards.len()).rev() {
                let j = rng.uniform(0, i as i64) as usize;
                self.cards.swap(i, j);
            }
            self.next = 0;
        }
        self.next += 1;
        self.cards[self.next - 1]
    }
}

impl Default for Deck {
    fn default() -> Self {
        Deck::new()
    }
}

/// One emulated terminal: its home warehouse, its Stock-Level district, and its random inputs.
pub struct Terminal {
    /// Home warehouse.
    pub w_id: i64,
    /// The district of its Stock-Level transactions (clause 2.8.1.1: fixed per terminal).
    pub d_id: i64,
    /// Warehouses in the database (for remote warehouses).
    pub warehouses: i64,
    /// The run-time NURand constants.
    pub constants: Constants,
    /// The terminal's generator.
    pub rng: Rng,
    /// The mode.
    pub mode: Mode,
    /// The database's items and customers.
    pub scale: Scale,
}

/// The customer of a Payment or Order-Status: by id, or by last name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Customer {
    Id(i64),
    LastName(String),
}

impl Customer {
    /// The stored procedures' `(c_id, c_last)` arguments: one of the two is set.
    fn procedure_args(&self) -> (i64, String) {
        match self {
            Customer::Id(id) => (*id, String::new()),
            Customer::LastName(name) => (0, name.clone()),
        }
    }
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

/// An integer array as PostgreSQL's text form (`{1,2,3}`).
fn int_array(values: impl Iterator<Item = i64>) -> Value {
    Value::Text(format!("{{{}}}", values.map(|v| v.to_string()).collect::<Vec<_>>().join(",")))
}

/// Parses a decimal with up to two places ("12.3", "-10.00") into hundredths.
pub fn parse_cents(text: &str) -> Result<Cents, DbError> {
    let bad = || DbError::other(format!("not an amount: {text:?}"));
    let (neg, digits) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac2: String = frac.chars().chain("00".chars()).take(2).collect();
    let frac2: i64 = frac2.parse().map_err(|_| bad())?;
    let cents = whole * 100 + frac2;
    Ok(Cents(if neg { -cents } else { cents }))
}

fn first_int(rows: &Rows) -> Result<i64, DbError> {
    rows.int(0, 0)
}

/// New-Order's inputs (clause 2.4.1).
#[derive(Clone, Debug)]
pub struct NewOrderInput {
    d_id: i64,
    c_id: i64,
    /// (item, supply warehouse, quantity), sorted by item: every transaction takes its stock row
    /// locks in one order, so two New-Orders never deadlock; an unused item number sorts last.
    lines: Vec<(i64, i64, i64)>,
}

impl Terminal {
    /// A terminal of home warehouse `w_id`.
    pub fn new(w_id: i64, d_id: i64, warehouses: i64, constants: Constants, seed: u64, mode: Mode) -> Terminal {
        Terminal { w_id, d_id, warehouses, constants, rng: Rng::new(seed), mode, scale: Scale::TPCC }
    }

    /// Another warehouse than the home one, uniformly (the home one if it is the only one).
    fn remote_warehouse(&mut self) -> i64 {
        if self.warehouses <= 1 {
            return self.w_id;
        }
        let w = self.rng.uniform(1, self.warehouses - 1);
        if w >= self.w_id { w + 1 } else { w }
    }

    fn customer(&mut self) -> Customer {
        if self.rng.uniform(1, 100) <= 60 {
            Customer::LastName(last_name(self.rng.last_name_number(self.constants.c_last, self.scale.names())))
        } else {
            Customer::Id(self.rng.nurand(1023, self.constants.c_id, 1, self.scale.customers))
        }
    }

    /// New-Order's inputs: 1% roll back on an unused item number, 1% of lines are remote.
    pub fn new_order_input(&mut self) -> NewOrderInput {
        let d_id = self.rng.uniform(1, DISTRICTS);
        let c_id = self.rng.nurand(1023, self.constants.c_id, 1, self.scale.customers);
        let count = self.rng.uniform(5, 15);
        let rollback = self.rng.uniform(1, 100) == 1;
        let mut lines: Vec<(i64, i64, i64)> = (0..count)
            .map(|n| {
                let item = if rollback && n == count - 1 {
                    self.scale.items + 1
                } else {
                    self.rng.nurand(8191, self.constants.ol_i_id, 1, self.scale.items)
                };
                let supply = if self.rng.uniform(1, 100) == 1 { self.remote_warehouse() } else { self.w_id };
                (item, supply, self.rng.uniform(1, 10))
            })
            .collect();
        lines.sort_unstable();
        NewOrderInput { d_id, c_id, lines }
    }

    /// Runs one transaction of `kind` with fresh inputs.
    pub fn execute(&mut self, session: &mut dyn Session, kind: Kind) -> Result<Outcome, DbError> {
        match kind {
            Kind::NewOrder => {
                let input = self.new_order_input();
                self.new_order(session, &input)
            }
            Kind::Payment => {
                let d_id = self.rng.uniform(1, DISTRICTS);
                let (c_w_id, c_d_id) = if self.rng.uniform(1, 100) <= 85 || self.warehouses == 1 {
                    (self.w_id, d_id)
                } else {
                    (self.remote_warehouse(), self.rng.uniform(1, DISTRICTS))
                };
                let customer = self.customer();
                let amount = self.rng.cents(100, 500_000);
                self.payment(session, d_id, c_w_id, c_d_id, &customer, amount)
            }
            Kind::OrderStatus => {
                let d_id = self.rng.uniform(1, DISTRICTS);
                let customer = self.customer();
                self.order_status(session, d_id, &customer)
            }
            Kind::Delivery => {
                let carrier = self.rng.uniform(1, 10);
                self.delivery(session, carrier)
            }
            Kind::StockLevel => {
                let threshold = self.rng.uniform(10, 20);
                self.stock_level(session, threshold)
            }
        }
    }

    /// Runs `body` between BEGIN and COMMIT; rolls back on any error, or when it says so.
    fn interactive(
        session: &mut dyn Session,
        body: impl FnOnce(&mut dyn Session) -> Result<Outcome, DbError>,
    ) -> Result<Outcome, DbError> {
        session.begin()?;
        match body(session) {
            Ok(Outcome::Committed) => {
                session.commit()?;
                Ok(Outcome::Committed)
            }
            Ok(Outcome::RolledBack) => {
                session.rollback()?;
                Ok(Outcome::RolledBack)
            }
            Err(e) => {
                // The error is what matters; a failed rollback leaves the session to the server.
                let _ = session.rollback();
                Err(e)
            }
        }
    }

    fn new_order(&mut self, session: &mut dyn Session, input: &NewOrderInput) -> Result<Outcome, DbError> {
        let w_id = self.w_id;
        let all_local = i64::from(input.lines.iter().all(|(_, w, _)| *w == w_id));
        match self.mode {
            Mode::Procedures => {
                let result = session.execute(
                    "SELECT tpcc_new_order($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        int(w_id),
                        int(input.d_id),
                        int(input.c_id),
                        int(all_local),
                        int_array(input.lines.iter().map(|l| l.0)),
                        int_array(input.lines.iter().map(|l| l.1)),
                        int_array(input.lines.iter().map(|l| l.2)),
                    ],
                );
                match result {
                    Ok(_) => Ok(Outcome::Committed),
                    Err(e) if e.message.contains(ITEM_NOT_VALID) => Ok(Outcome::RolledBack),
                    Err(e) => Err(e),
                }
            }
            Mode::Interactive => Self::interactive(session, |s| {
                let (d_id, c_id) = (input.d_id, input.c_id);
                s.execute("SELECT w_tax FROM warehouse WHERE w_id = $1", &[int(w_id)])?;
                let district = s.execute(
                    "UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = $1 AND d_id = $2 \
                     RETURNING d_tax, d_next_o_id - 1",
                    &[int(w_id), int(d_id)],
                )?;
                let o_id = district.int(0, 1)?;
                s.execute(
                    "SELECT c_discount, c_last, c_credit FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                    &[int(w_id), int(d_id), int(c_id)],
                )?;
                s.execute(
                    "INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, o_ol_cnt, o_all_local) \
                     VALUES ($1, $2, $3, $4, now(), NULL, $5, $6)",
                    &[int(o_id), int(d_id), int(w_id), int(c_id), int(input.lines.len() as i64), int(all_local)],
                )?;
                s.execute(
                    "INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ($1, $2, $3)",
                    &[int(o_id), int(d_id), int(w_id)],
                )?;
                let dist_column = format!("s_dist_{d_id:02}");
                let stock_sql = format!(
                    "UPDATE stock SET s_quantity = CASE WHEN s_quantity >= $1 + 10 THEN s_quantity - $1 \
                     ELSE s_quantity - $1 + 91 END, s_ytd = s_ytd + $1, s_order_cnt = s_order_cnt + 1, \
                     s_remote_cnt = s_remote_cnt + $2 WHERE s_i_id = $3 AND s_w_id = $4 \
                     RETURNING s_quantity, s_data, {dist_column}"
                );
                for (number, (item, supply, quantity)) in input.lines.iter().enumerate() {
                    let found = s.execute("SELECT i_price, i_name, i_data FROM item WHERE i_id = $1", &[int(*item)])?;
                    if found.rows.is_empty() {
                        // Clause 2.4.2.3: "Item number is not valid"; the transaction rolls back.
                        return Ok(Outcome::RolledBack);
                    }
                    let price = parse_cents(found.get(0, 0).unwrap_or("0"))?;
                    let remote = i64::from(*supply != w_id);
                    let stock = s.execute(&stock_sql, &[int(*quantity), int(remote), int(*item), int(*supply)])?;
                    let amount = Cents(price.0 * quantity);
                    s.execute(
                        "INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, \
                         ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) \
                         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)",
                        &[
                            int(o_id),
                            int(d_id),
                            int(w_id),
                            int(number as i64 + 1),
                            int(*item),
                            int(*supply),
                            int(*quantity),
                            text(amount.to_string()),
                            text(stock.get(0, 2).unwrap_or_default()),
                        ],
                    )?;
                }
                Ok(Outcome::Committed)
            }),
        }
    }

    fn payment(
        &mut self,
        session: &mut dyn Session,
        d_id: i64,
        c_w_id: i64,
        c_d_id: i64,
        customer: &Customer,
        amount: Cents,
    ) -> Result<Outcome, DbError> {
        let w_id = self.w_id;
        match self.mode {
            Mode::Procedures => {
                let (c_id, c_last) = customer.procedure_args();
                session.execute(
                    "SELECT tpcc_payment($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        int(w_id),
                        int(d_id),
                        int(c_w_id),
                        int(c_d_id),
                        int(c_id),
                        text(c_last),
                        text(amount.to_string()),
                    ],
                )?;
                Ok(Outcome::Committed)
            }
            Mode::Interactive => Self::interactive(session, |s| {
                let w = s.execute(
                    "UPDATE warehouse SET w_ytd = w_ytd + $2 WHERE w_id = $1 \
                     RETURNING w_name, w_street_1, w_street_2, w_city, w_state, w_zip",
                    &[int(w_id), text(amount.to_string())],
                )?;
                let d = s.execute(
                    "UPDATE district SET d_ytd = d_ytd + $3 WHERE d_w_id = $1 AND d_id = $2 \
                     RETURNING d_name, d_street_1, d_street_2, d_city, d_state, d_zip",
                    &[int(w_id), int(d_id), text(amount.to_string())],
                )?;
                let c_id = customer_id(s, c_w_id, c_d_id, customer)?;
                let note = format!("{c_id} {c_d_id} {c_w_id} {d_id} {w_id} {amount} | ");
                s.execute(
                    "UPDATE customer SET c_balance = c_balance - $4, c_ytd_payment = c_ytd_payment + $4, \
                     c_payment_cnt = c_payment_cnt + 1, \
                     c_data = CASE WHEN c_credit = 'BC' THEN left($5 || c_data, 500) ELSE c_data END \
                     WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3 \
                     RETURNING c_first, c_middle, c_last, c_street_1, c_street_2, c_city, c_state, c_zip, c_phone, \
                     c_since, c_credit, c_credit_lim, c_discount, c_balance",
                    &[int(c_w_id), int(c_d_id), int(c_id), text(amount.to_string()), text(note)],
                )?;
                let h_data = format!("{}    {}", w.get(0, 0).unwrap_or_default(), d.get(0, 0).unwrap_or_default());
                s.execute(
                    "INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, h_amount, h_data) \
                     VALUES ($1, $2, $3, $4, $5, now(), $6, $7)",
                    &[
                        int(c_id),
                        int(c_d_id),
                        int(c_w_id),
                        int(d_id),
                        int(w_id),
                        text(amount.to_string()),
                        text(h_data),
                    ],
                )?;
                Ok(Outcome::Committed)
            }),
        }
    }

    fn order_status(&mut self, session: &mut dyn Session, d_id: i64, customer: &Customer) -> Result<Outcome, DbError> {
        let w_id = self.w_id;
        match self.mode {
            Mode::Procedures => {
                let (c_id, c_last) = customer.procedure_args();
                session.execute(
                    "SELECT tpcc_order_status($1, $2, $3, $4)",
                    &[int(w_id), int(d_id), int(c_id), text(c_last)],
                )?;
                Ok(Outcome::Committed)
            }
            Mode::Interactive => Self::interactive(session, |s| {
                let c_id = customer_id(s, w_id, d_id, customer)?;
                s.execute(
                    "SELECT c_balance, c_first, c_middle, c_last FROM customer \
                     WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                    &[int(w_id), int(d_id), int(c_id)],
                )?;
                let order = s.execute(
                    "SELECT o_id, o_entry_d, o_carrier_id FROM orders WHERE o_w_id = $1 AND o_d_id = $2 AND o_c_id = $3 \
                     ORDER BY o_id DESC LIMIT 1",
                    &[int(w_id), int(d_id), int(c_id)],
                )?;
                if let Ok(o_id) = first_int(&order) {
                    s.execute(
                        "SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d FROM order_line \
                         WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                        &[int(w_id), int(d_id), int(o_id)],
                    )?;
                }
                Ok(Outcome::Committed)
            }),
        }
    }

    fn delivery(&mut self, session: &mut dyn Session, carrier: i64) -> Result<Outcome, DbError> {
        let w_id = self.w_id;
        match self.mode {
            Mode::Procedures => {
                session.execute("SELECT tpcc_delivery($1, $2)", &[int(w_id), int(carrier)])?;
                Ok(Outcome::Committed)
            }
            Mode::Interactive => Self::interactive(session, |s| {
                for d_id in 1..=DISTRICTS {
                    let oldest = s.execute(
                        "SELECT no_o_id FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 \
                         ORDER BY no_o_id LIMIT 1 FOR UPDATE",
                        &[int(w_id), int(d_id)],
                    )?;
                    let Ok(o_id) = first_int(&oldest) else { continue };
                    let keys = [int(w_id), int(d_id), int(o_id)];
                    s.execute("DELETE FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 AND no_o_id = $3", &keys)?;
                    let order = s.execute(
                        "UPDATE orders SET o_carrier_id = $4 WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3 \
                         RETURNING o_c_id",
                        &[int(w_id), int(d_id), int(o_id), int(carrier)],
                    )?;
                    let c_id = first_int(&order)?;
                    s.execute(
                        "UPDATE order_line SET ol_delivery_d = now() WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                        &keys,
                    )?;
                    let sum = s.execute(
                        "SELECT COALESCE(sum(ol_amount), 0) FROM order_line \
                         WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                        &keys,
                    )?;
                    s.execute(
                        "UPDATE customer SET c_balance = c_balance + $4, c_delivery_cnt = c_delivery_cnt + 1 \
                         WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                        &[int(w_id), int(d_id), int(c_id), text(sum.get(0, 0).unwrap_or("0"))],
                    )?;
                }
                Ok(Outcome::Committed)
            }),
        }
    }

    fn stock_level(&mut self, session: &mut dyn Session, threshold: i64) -> Result<Outcome, DbError> {
        let (w_id, d_id) = (self.w_id, self.d_id);
        match self.mode {
            Mode::Procedures => {
                session.execute("SELECT tpcc_stock_level($1, $2, $3)", &[int(w_id), int(d_id), int(threshold)])?;
                Ok(Outcome::Committed)
            }
            Mode::Interactive => Self::interactive(session, |s| {
                let district = s.execute(
                    "SELECT d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2",
                    &[int(w_id), int(d_id)],
                )?;
                let next = first_int(&district)?;
                s.execute(
                    "SELECT count(DISTINCT s_i_id) FROM order_line, stock \
                     WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id < $3 AND ol_o_id >= $4 \
                     AND s_w_id = $1 AND s_i_id = ol_i_id AND s_quantity < $5",
                    &[int(w_id), int(d_id), int(next), int(next - 20), int(threshold)],
                )?;
                Ok(Outcome::Committed)
            }),
        }
    }
}

/// The customer's id: given, or the one in the middle (rounded up) of those with the last name,
/// ordered by first name (clause 2.5.2.2).
fn customer_id(s: &mut dyn Session, w_id: i64, d_id: i64, customer: &Customer) -> Result<i64, DbError> {
    match customer {
        Customer::Id(id) => Ok(*id),
        Customer::LastName(name) => {
            let rows = s.execute(
                "SELECT c_id FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_last = $3 ORDER BY c_first, c_id",
                &[int(w_id), int(d_id), text(name.clone())],
            )?;
            middle_customer(&rows).ok_or_else(|| DbError::other(format!("no customer named {name}")))
        }
    }
}

/// Row `ceil(n / 2)` (1-based) of a non-empty result, as an integer.
fn middle_customer(rows: &Rows) -> Option<i64> {
    if rows.rows.is_empty() {
        return None;
    }
    rows.int((rows.rows.len() - 1) / 2, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deck_deals_the_mix_exactly() {
        let mut deck = Deck::new();
        let mut rng = Rng::new(9);
        let mut counts = [0usize; 5];
        for _ in 0..1000 {
            counts[deck.draw(&mut rng).index()] += 1;
        }
        assert_eq!(counts, [450, 430, 40, 40, 40]);
    }

    #[test]
    fn new_orders_roll_back_one_in_a_hundred_and_go_remote_one_line_in_a_hundred() {
        let constants = Constants { c_last: 1, c_id: 2, ol_i_id: 3 };
        let mut t = Terminal::new(2, 1, 5, constants, 11, Mode::Procedures);
        let (mut rollbacks, mut lines, mut remote) = (0, 0, 0);
        for _ in 0..20_000 {
            let input = t.new_order_input();
            assert!((5..=15).contains(&input.lines.len()));
            assert!(input.lines.windows(2).all(|w| w[0] <= w[1]), "sorted by item");
            rollbacks += usize::from(input.lines.iter().any(|l| l.0 > Scale::TPCC.items));
            assert!(
                input.lines[..input.lines.len() - 1].iter().all(|l| l.0 <= Scale::TPCC.items),
                "only the last is unused"
            );
            lines += input.lines.len();
            remote += input.lines.iter().filter(|l| l.1 != 2).count();
            assert!(input.lines.iter().all(|l| (1..=5).contains(&l.1) && (1..=10).contains(&l.2)));
        }
        assert!((140..=260).contains(&rollbacks), "{rollbacks} rollbacks in 20000");
        let share = remote as f64 / lines as f64;
        assert!((0.007..0.013).contains(&share), "{share}");
    }

    #[test]
    fn one_warehouse_never_goes_remote() {
        let constants = Constants { c_last: 1, c_id: 2, ol_i_id: 3 };
        let mut t = Terminal::new(1, 1, 1, constants, 5, Mode::Interactive);
        for _ in 0..1000 {
            assert_eq!(t.remote_warehouse(), 1);
        }
        let mut t = Terminal::new(3, 1, 3, constants, 5, Mode::Interactive);
        for _ in 0..1000 {
            let w = t.remote_warehouse();
            assert!(w == 1 || w == 2);
        }
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_cents("12.34").map(|c| c.0).ok(), Some(1234));
        assert_eq!(parse_cents("-10.00").map(|c| c.0).ok(), Some(-1000));
        assert_eq!(parse_cents("7").map(|c| c.0).ok(), Some(700));
        assert_eq!(parse_cents("0.5").map(|c| c.0).ok(), Some(50));
        assert!(parse_cents("x").is_err());
    }

    #[test]
    fn the_middle_customer_is_rounded_up() {
        let rows = |n: i64| Rows { rows: (1..=n).map(|i| vec![Some(i.to_string())]).collect(), affected: n as u64 };
        assert_eq!(middle_customer(&rows(1)), Some(1));
        assert_eq!(middle_customer(&rows(2)), Some(1));
        assert_eq!(middle_customer(&rows(3)), Some(2));
        assert_eq!(middle_customer(&rows(4)), Some(2));
        assert_eq!(middle_customer(&rows(0)), None);
    }
}
