//! Real cache servers for tests: each is a child process on a free local port, stopped
//! when its handle is dropped. Nothing is mocked.

pub mod memcached;
mod process;
pub mod redis;
pub mod relay;
