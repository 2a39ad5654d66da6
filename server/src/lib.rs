//! `barista-server`: the `barista` binary's parts.
//!
//! - [`cli`]: the command line (`serve`, `status`, `reseed`, `demo`).
//! - [`config`]: `serve`'s configuration: TOML file, flags and environment merged and validated.
//! - [`serve`]: one replica assembled and run: ZooKeeper store, PostgreSQL backend, node loop,
//!   TCP peers, the Thrift API and the admin endpoint.
//! - [`api`]: the Thrift client API (generated code, handler, conversions, bounded server).
//! - [`pgwire`]: the PostgreSQL wire protocol front end (psql, pgbench, PostgreSQL drivers).
//! - [`admin`]: `/metrics` (Prometheus text format) and `/status` (JSON), and `barista status`.
//! - [`local_cluster`]: a whole cluster on this machine (ZooKeeper, PostgreSQL, `barista serve`
//!   processes), for `barista demo` and the integration tests.
//! - [`reseed`]: `barista reseed`, a stopped replica's database rebuilt from a consistent
//!   snapshot of a healthy one that keeps serving.
//! - [`demo`]: `barista demo`, the narrated tour of a local cluster.
//! - [`logging`]: structured logs via `tracing`.
//!
//! Production only: nothing here is built into the simulation (it runs the runtime's node and
//! service directly).

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod local_cluster;
pub mod logging;
pub mod pgwire;
pub mod reseed;
pub mod serve;
