//! Admin: the HTTP endpoint (`/metrics` in the Prometheus text format, `/status` and `/checks` as
//! JSON, `POST /verify`), the metrics themselves, the `barista status` command that reads
//! `/status` from every replica, and `barista verify`, which runs a divergence check.

pub mod http;
pub mod metrics;
pub mod report;
pub mod status_cmd;
pub mod verify_cmd;

pub use http::AdminState;
pub use metrics::Metrics;
pub use report::{CheckReport, ChecksReport, Report};
pub use status_cmd::{fetch_report, http_get, http_post};
