//! `barista-server`: the `barista` binary.
//!
//! Not built yet (issue 4): configuration, the Thrift front end (later the PostgreSQL wire
//! protocol), `barista status`, metrics, and `barista demo` (issue 6).
