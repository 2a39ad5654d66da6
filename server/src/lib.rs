//! `barista-server`: the `barista` binary's parts.
//!
//! - [`cli`]: the command line (`serve`, `status`).
//! - [`config`]: `serve`'s configuration: TOML file, flags and environment merged and validated.
//! - [`serve`]: one replica assembled and run: ZooKeeper store, PostgreSQL backend, node loop,
//!   TCP peers, the Thrift API and the admin endpoint.
//! - [`api`]: the Thrift client API (generated code, handler, conversions, bounded server).
//! - [`admin`]: `/metrics` (Prometheus text format) and `/status` (JSON), and `barista status`.
//! - [`logging`]: structured logs via `tracing`.
//!
//! Production only: nothing here is built into the simulation (it runs the runtime's node and
//! service directly).

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod logging;
pub mod serve;
