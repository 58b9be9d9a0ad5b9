//! Every cache backend against the same contract, on real servers.

mod contract;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;
