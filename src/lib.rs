//! feerecon: cashless collection of the fees (phí) and charges (lệ phí) of online public services
//! for a Vietnamese province, with gateway callbacks, daily reconciliation and a tamper-evident
//! ledger.
//!
//! # Layers
//!
//! Every module sits in one layer and imports only modules of lower layers; services (layer 4)
//! may also use each other. The test `tests/api/layers.rs` reads this table and the sources, and
//! fails on any other import.
//!
//! | layer | module | what it owns |
//! |---|---|---|
//! | 0 | [`embedded`] | the default catalogue, policies, settlement profiles and case fixtures, compiled into the binary |
//! | 0 | [`domain`] | the shared vocabulary: `CaseCode`, `Money`, `Gateway`, states, categories, the clock, hash-chain links |
//! | 1 | [`telemetry`] | structured logs and the Prometheus metrics |
//! | 2 | [`config`] | every `FEERECON_*` variable, typed and checked once at start-up |
//! | 3 | [`auth`] | API tokens and passwords: minting, hashing, constant-time checks (pure) |
//! | 3 | [`cases`] | reading case files (JSON or CSV) for `import cases` (pure) |
//! | 3 | [`fees`] | the catalogue, the province's policy and the quote (pure) |
//! | 3 | [`gateway`] | VNPAY, MoMo, ZaloPay and DVCQG message code: sign, verify, parse, reply; status queries |
//! | 3 | [`settlement`] | settlement-file profiles and the all-or-nothing parser (pure) |
//! | 3 | [`reconcile`] | the matcher and the report of a run (pure) |
//! | 3 | [`store`] | persistence only: rows, SQL and transactions on SQLite or PostgreSQL |
//! | 4 | [`ledger`] | the chain routine, postings' appends, signed checkpoints, export and verification |
//! | 4 | [`notify`] | portal events and their delivery: signed, retried, dead-lettered |
//! | 4 | [`accounts`] | users and tokens, audited |
//! | 4 | [`payments`] | creating payments, the committer of payment outcomes, status queries |
//! | 4 | [`recon`] | settlement imports, reconciliation runs, exceptions with four eyes, day close |
//! | 4 | [`receipts`] | e-receipts issued with the money, their numbering, corrections, the day's summary for the tax office |
//! | 4 | [`remittance`] | treasury remittance: statements by period and budget sub-item from the ledger, transfers recorded under four eyes |
//! | 5 | [`http`] | the server: routers per area, access checks, the error envelope, health, OpenAPI |
//! | 5 | [`simulator`] | a stand-in VNPAY, MoMo, ZaloPay and DVCQG for integrators, the tests and the demo |
//! | 6 | [`demo`] | `feerecon demo`: one business day played through the server, the simulator and a webhook receiver |
//! | 7 | [`cli`] | the `feerecon` command; `main.rs` only calls it |

pub mod accounts;
pub mod auth;
pub mod cases;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod embedded;
pub mod fees;
pub mod gateway;
pub mod http;
pub mod ledger;
pub mod notify;
pub mod payments;
pub mod receipts;
pub mod recon;
pub mod reconcile;
pub mod remittance;
pub mod settlement;
pub mod simulator;
pub mod store;
pub mod telemetry;
