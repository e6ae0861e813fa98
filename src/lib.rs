//! feerecon: cashless collection of the fees (phí) and charges (lệ phí) of online public services
//! for a Vietnamese province, with gateway callbacks, daily reconciliation and a tamper-evident
//! ledger.
//!
//! # Layout
//!
//! Lower layers never import higher ones:
//!
//! - [`domain`]: the vocabulary every other module shares: `CaseCode`, `ProcedureCode`,
//!   `Money`, `Channel`, `Subject`, `BusinessDate`, `Secret`, the clock, hash-chain links.
//! - [`auth`]: API tokens and passwords (minting, hashing, constant-time checks). Pure.
//! - [`cases`]: reading case files (JSON or CSV) for `import cases`. Pure.
//! - [`fees`]: the fee catalogue, the province's policy and the quote. Pure.
//! - [`gateway`]: VNPAY, MoMo and ZaloPay adapters: signing, verifying, replies, status queries.
//! - [`settlement`]: settlement-file profiles and the all-or-nothing parser. Pure.
//! - [`reconcile`]: the pure matcher and the report of a run. Pure.
//! - [`store`]: persistence. One `Store` trait, a SQLite and a PostgreSQL backend; all SQL lives here.
//! - [`payments`]: creating payments, the group-commit write path of gateway events, status queries.
//! - [`ledger`]: the signing key, checkpoints, the auditor's export and offline verification.
//! - [`notify`]: delivering the outbox of portal events, signed, with retries and dead letters.
//! - [`http`]: the server: routers per area, the bearer-token layer and the route × role table,
//!   the error envelope, health, metrics and the OpenAPI document.
//! - [`simulator`]: a stand-in VNPAY, MoMo and ZaloPay for integrators, the tests and the demo.
//! - [`config`]: every `FEERECON_*` variable, typed and checked once at start-up.
//! - [`telemetry`]: structured logs (text or JSON lines).
//! - [`cli`]: the `feerecon` command and its subcommands; `main.rs` only calls it.

pub mod auth;
pub mod cases;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fees;
pub mod gateway;
pub mod http;
pub mod ledger;
pub mod notify;
pub mod payments;
pub mod reconcile;
pub mod settlement;
pub mod simulator;
pub mod store;
pub mod telemetry;
