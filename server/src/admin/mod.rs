//! Admin: the HTTP endpoint (`/metrics` in the Prometheus text format, `/status` as JSON), the
//! metrics themselves, and the `barista status` command that reads `/status` from every replica.

pub mod http;
pub mod metrics;
pub mod report;
pub mod status_cmd;

pub use http::AdminState;
pub use metrics::Metrics;
pub use report::Report;
pub use status_cmd::{fetch_report, http_get};
