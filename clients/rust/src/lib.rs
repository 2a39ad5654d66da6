//! `barista-client`: the Rust client for Barista's Thrift API.
//!
//! Not built yet (issue 4): a list of replicas, failover, and retries that reuse the request
//! sequence number so a retried request is applied once.
