//! The integration suite: the seed's scenarios in our words, on every backend, with real
//! servers started by the test harness.

mod bulk;
mod collection_workload;
mod collections;
mod consistency;
mod env;
mod fixtures;
mod instances;
mod multicache;
mod workload;
