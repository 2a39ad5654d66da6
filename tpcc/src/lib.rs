//! `barista-tpcc`: a TPC-C 5.11 kit (loader, driver, consistency checker) that runs the same SQL
//! against Barista (`barista://...`, through `barista-client`) and against any PostgreSQL URL,
//! so that Barista and the systems people would choose instead are measured by one driver.
//!
//! - [`load`]: schema, stored procedures, and the initial population of N warehouses.
//! - [`run`]: terminals running the 45/43/4/4/4 mix, interactive or through procedures.
//! - [`report`]: tpmC, per-type throughput and latency, JSON and an SVG chart.
//! - [`check`]: consistency conditions 1-12 and identical data across replicas.
//! - [`target`]: the database under test behind one trait.

pub mod check;
pub mod load;
pub mod random;
pub mod report;
pub mod run;
pub mod schema;
pub mod target;
pub mod txn;
