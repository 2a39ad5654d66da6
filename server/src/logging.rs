//! Structured logs through `tracing`: the filter comes from RUST_LOG when set, else from the
//! `log_level` setting; events carry their fields (`node`, `slot`, ...) as key=value pairs.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. A `log_level` that does not parse is an error (RUST_LOG too).
pub fn init(log_level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| anyhow::anyhow!("RUST_LOG={spec:?}: {e}"))?
        }
        _ => EnvFilter::try_new(log_level).map_err(|e| anyhow::anyhow!("log_level {log_level:?}: {e}"))?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
