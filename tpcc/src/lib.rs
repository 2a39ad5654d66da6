//! `barista-tpcc`: TPC-C 5.11 loader, driver and consistency checker.
//!
//! Not built yet (issue 8).
