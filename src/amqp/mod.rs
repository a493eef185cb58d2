//! Broker side.
