//! Parlor: an IRC-compatible community chat server.
//!
//! Data flows one way: socket → [`proto::codec`] → [`proto::Message`] →
//! [`commands::dispatch`] → handler → state change and replies → each
//! client's [`server::outbox`] → socket.

pub mod accounts;
pub mod admin;
pub mod casemap;
pub mod commands;
pub mod config;
pub mod export;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod password;
pub mod proto;
pub mod scram;
pub mod server;
pub mod store;
pub mod tls;

pub use config::Config;
pub use server::{run, spawn, spawn_with_source, ServerHandle};

pub use password::hash_password;
