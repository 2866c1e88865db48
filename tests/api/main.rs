//! Integration tests: the real server over a real socket, called through the generated
//! clients, against a real PostgreSQL. One binary, one module per area, one database
//! per test.

mod cli;
mod concurrency;
mod crash;
mod faults;
mod filters;
mod helpers;
mod hostile;
mod indicators;
mod observations;
mod programs;
mod reports;
mod security;
mod seed;
mod server;
