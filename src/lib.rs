//! tradewatch: a gRPC service that keeps governments' trade-development programmes —
//! their initiatives, the indicators that measure them and their targets — in
//! PostgreSQL.
//!
//! Layout:
//! - [`config`]: flags and environment, all errors reported at once;
//! - [`cli`]: operator commands that are clients of a running server (import, export);
//! - [`calls`]: the call layer: request ids, API keys and roles, deadlines, logs, metrics;
//! - [`metrics`]: Prometheus metrics and their HTTP endpoint;
//! - [`server`]: assembly of the gRPC server (health, reflection, tracing, shutdown);
//! - [`api`]: one module per gRPC service: request → domain → store → response;
//! - [`domain`]: validated types and pure logic (ids, names, periods, decimals, codes);
//! - [`store`]: SQL, one module per aggregate, and the migrations;
//! - [`filter`]: AIP-160 `filter` and AIP-132 `order_by` of the List methods, parsed
//!   and compiled to SQL with bound parameters only;
//! - [`embedded_pg`]: the private PostgreSQL cluster of the zero-configuration default;
//! - [`seed`]: the built-in Chongqing 2015 programme;
//! - [`error`]: the one error type and its mapping to gRPC statuses.

pub mod api;
pub mod calls;
pub mod cli;
pub mod config;
pub mod domain;
pub mod embedded_pg;
pub mod error;
pub mod feed;
pub mod filter;
pub mod metrics;
pub mod proto;
pub mod seed;
pub mod server;
pub mod store;
