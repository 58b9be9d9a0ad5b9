//! Memcached backend (written next).
