//! Redis backend (written next).
