//! `barista-sim`: deterministic simulation of whole Barista clusters.
//!
//! Not built yet (issue 3). It will run the runtime's real node loop over madsim's simulated
//! network with in-memory ZooKeeper and PostgreSQL stand-ins, inject faults from one seed, and
//! check the cluster-wide invariants. Until then the core's property tests
//! (`core/tests/properties.rs`) exercise random schedules of the state machine alone.
