#![allow(clippy::unwrap_used)]
//! The integration suite: one test binary. Store and API tests run twice, on SQLite and on a real
//! PostgreSQL server the harness starts itself (`pg.rs`), each test with a fresh database.

#[allow(dead_code)]
mod helpers;
mod pg;

mod access;
mod across_days;
mod bad_files;
mod bad_imports;
mod browser;
mod cases;
mod cli;
mod cli_refusals;
mod concurrency;
mod confirmations;
mod crash;
mod crash_ops;
mod dash;
mod dashboard;
mod db_faults;
mod demo;
mod docs;
mod dvcqg;
mod fees;
mod forge;
mod forgery;
mod gateways;
mod health;
mod imports;
mod item_blocks;
mod layers;
mod ledger;
mod migrations;
mod model;
mod mutations;
mod notify;
mod openapi;
mod outcomes;
mod paging;
mod queries;
mod receipts;
mod receipts_dash;
mod receipts_days;
mod recon;
mod recon_pages;
mod remittance;
mod security;
mod world;
