//! The vocabulary of settlement and reconciliation (SPEC §7): a settlement line in canonical
//! form and its status, the item categories, an item of a run, and an exception's states.
//!
//! The file parser produces `Line`s, the store keeps them, the pure matcher classifies them into
//! `Item`s, the store keeps those, and the workflows act on exceptions: all speak these types.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::tags::tag_enum;
use super::vn_offset;

tag_enum!(
    /// What a settlement line says happened.
    LineStatus, "line status", {
        /// The gateway collected the amount for us.
        Success => "success",
        /// The gateway paid the amount back to the payer.
        Refund => "refund",
    }
);

tag_enum!(
    /// Item categories, in the order a line is tested against them (SPEC §7.2);
    /// `MissingInSettlement` (payments with no line) comes last in summaries.
    Category, "category", {
        DuplicateSettlementLine => "duplicate_settlement_line",
        Refund => "refund",
        MissingInRecords => "missing_in_records",
        UnconfirmedInRecords => "unconfirmed_in_records",
        DuplicatePayment => "duplicate_payment",
        AmountMismatch => "amount_mismatch",
        FeeMismatch => "fee_mismatch",
        Matched => "matched",
        MissingInSettlement => "missing_in_settlement",
    }
);

tag_enum!(
    /// Where an exception stands (SPEC §7.3).
    ExceptionState, "exception state", {
        /// Waiting for a finance user to resolve it.
        Open => "open",
        /// A money-moving resolution waits for a second finance user.
        PendingApproval => "pending_approval",
        /// Resolved (approved, or accepted).
        Resolved => "resolved",
        /// A re-run of its open date no longer has its item, or has it matched through another
        /// event: its money movement is reversed. It reopens if its item returns.
        Superseded => "superseded",
    }
);

/// One settlement line in canonical form. Amounts are whole đồng (the file's scale divided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub line_no: usize,
    pub gateway_txn_no: String,
    pub txn_ref: String,
    pub amount: i64,
    pub fee: i64,
    pub txn_time: DateTime<Utc>,
    pub status: LineStatus,
}

impl Line {
    /// The line's own business date: its `txn_time` in Asia/Ho_Chi_Minh.
    pub fn business_date(&self) -> NaiveDate {
        self.txn_time.with_timezone(&vn_offset()).date_naive()
    }
}

/// One classified element of a run. Its text borrows from the run's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Item<'a> {
    pub key: String,
    pub category: Category,
    /// The original business date of its line or payment.
    pub business_date: NaiveDate,
    pub case_code: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    pub txn_ref: Option<&'a str>,
    pub gateway_txn_no: Option<&'a str>,
    /// The line's status, for line items.
    pub line_status: Option<LineStatus>,
    pub recorded_amount: Option<i64>,
    pub settled_amount: Option<i64>,
    pub expected_amount: Option<i64>,
    /// The date that counts the counterpart the item was classified against, when that is
    /// another date (a late line for a payment counted earlier, a late callback for a line).
    pub counterpart_date: Option<NaiveDate>,
    /// The gateway's fee on the line.
    pub fee: Option<i64>,
    /// The line settles a paid payment (its matching line): its money clears that payment;
    /// any other line's money is held in suspense until resolved.
    #[serde(skip)]
    pub settles_payment: bool,
}

/// An item as a run stored it, owning its text: what reports and exception workflows read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ItemRecord {
    pub item_key: String,
    pub category: Category,
    pub business_date: NaiveDate,
    pub case_code: Option<String>,
    pub payment_id: Option<String>,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub line_status: Option<LineStatus>,
    pub recorded_amount: Option<i64>,
    pub settled_amount: Option<i64>,
    pub expected_amount: Option<i64>,
    /// See `Item::counterpart_date`.
    pub counterpart_date: Option<NaiveDate>,
    pub fee: Option<i64>,
    /// See `Item::settles_payment`.
    pub settles_payment: bool,
}

impl From<&Item<'_>> for ItemRecord {
    /// The item as a run stores it.
    fn from(i: &Item<'_>) -> Self {
        ItemRecord {
            item_key: i.key.clone(),
            category: i.category,
            business_date: i.business_date,
            case_code: i.case_code.map(str::to_owned),
            payment_id: i.payment_id.map(str::to_owned),
            txn_ref: i.txn_ref.map(str::to_owned),
            gateway_txn_no: i.gateway_txn_no.map(str::to_owned),
            line_status: i.line_status,
            recorded_amount: i.recorded_amount,
            settled_amount: i.settled_amount,
            expected_amount: i.expected_amount,
            counterpart_date: i.counterpart_date,
            fee: i.fee,
            settles_payment: i.settles_payment,
        }
    }
}

impl Item<'_> {
    /// Line items count their settled amount, payment-only items their recorded amount.
    pub fn amount(&self) -> i64 {
        if self.line_status.is_some() { self.settled_amount.unwrap_or(0) } else { self.recorded_amount.unwrap_or(0) }
    }

    /// Whether the item is a first occurrence of its line (postings are made once per line).
    pub fn is_first_line(&self) -> bool {
        self.line_status.is_some() && self.category != Category::DuplicateSettlementLine
    }
}

tag_enum!(
    /// What finance can do about an exception (SPEC §7.3).
    Action, "action", {
        /// Pay the money back to the payer.
        Refund => "refund",
        /// Give the amount up (or keep money no payment explains).
        WriteOff => "write_off",
        /// Record the payment a settlement line proves.
        ConfirmFromSettlement => "confirm_from_settlement",
        /// Nothing to do: the exception is understood.
        Accept => "accept",
    }
);

impl Action {
    /// Whether it moves money, and so waits for a second finance user.
    pub fn moves_money(self) -> bool {
        self != Action::Accept
    }
}
