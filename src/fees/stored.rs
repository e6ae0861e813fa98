//! Reading back a quote a payment stored at its creation (the JSON `Quote::to_json` wrote), for
//! what follows from the payment: the revenue split of its posting, its kinds per item, what its
//! receipts name (procedure and as-of date), and each item's budget tag (sub-item and remittance
//! period, from the catalogue entry in force on the quote's date) that its revenue entries carry.
//!
//! A stored quote is the record of what the citizen was asked to pay; it is never recomputed for
//! that payment (the policy may have changed since). Keys this reader does not use are ignored.

use serde::Deserialize;

use crate::domain::ledger::QuotedItem;
use crate::domain::remittance::BudgetTag;

#[derive(Deserialize)]
struct StoredQuote {
    items: Vec<StoredItem>,
}

#[derive(Deserialize)]
struct StoredItem {
    fee: String,
    kind: String,
    citizen_due: i64,
    budget_due: i64,
    applied: Option<StoredRule>,
    #[serde(default)]
    support: Option<StoredRule>,
}

#[derive(Deserialize)]
struct StoredRule {
    rule: String,
    basis: String,
}

#[derive(Debug, thiserror::Error)]
#[error("a stored quote cannot be read: {0}")]
pub struct StoredQuoteError(#[from] serde_json::Error);

/// The items of a stored quote, as postings need them.
pub fn quoted_items(quote_json: &str) -> Result<Vec<QuotedItem>, StoredQuoteError> {
    let q: StoredQuote = serde_json::from_str(quote_json)?;
    Ok(items_of(q.items))
}

fn items_of(items: Vec<StoredItem>) -> Vec<QuotedItem> {
    items
        .into_iter()
        .map(|i| QuotedItem {
            fee: i.fee,
            kind: i.kind,
            citizen_due: i.citizen_due,
            budget_due: i.budget_due,
            basis: i.applied.map(|a| format!("{}: {}", a.rule, a.basis)),
            support: i.support.map(|a| format!("{}: {}", a.rule, a.basis)),
            tag: None,
        })
        .collect()
}

/// The items of a stored quote, each tagged with its fee's budget sub-item and remittance
/// period from `catalogue`: the entry of the quote's procedure in force on its as-of date (else
/// the item's first entry, the way receipts name it). A fee the catalogue no longer has is
/// tagged with its id only (no sub-item, monthly), so its revenue is still reported, as
/// unclassified.
pub fn tagged_items(quote_json: &str, catalogue: &super::Catalogue) -> Result<Vec<QuotedItem>, StoredQuoteError> {
    read_quote(quote_json)?.tagged(catalogue)
}

/// A stored quote parsed once, for a caller that needs several of its readings (the callback
/// committer: what the citizen owes, the posting's tagged items, the receipts' head and items).
#[derive(Debug, Clone)]
pub struct ReadQuote {
    /// The head, or the field it lacks.
    head: Result<QuoteHead, &'static str>,
    /// The items, untagged (as `quoted_items` reads them).
    pub items: Vec<QuotedItem>,
}

#[derive(Deserialize)]
struct StoredWhole {
    #[serde(default)]
    procedure_code: Option<String>,
    #[serde(default)]
    as_of: Option<chrono::NaiveDate>,
    items: Vec<StoredItem>,
}

/// Reads a stored quote once: its items (an error where `quoted_items` fails) and its head (an
/// error, when asked for, where `quote_head` fails).
pub fn read_quote(quote_json: &str) -> Result<ReadQuote, StoredQuoteError> {
    let q: StoredWhole = serde_json::from_str(quote_json)?;
    let head = match (q.procedure_code, q.as_of) {
        (Some(procedure_code), Some(as_of)) => Ok(QuoteHead { procedure_code, as_of }),
        (None, _) => Err("procedure_code"),
        (_, None) => Err("as_of"),
    };
    Ok(ReadQuote { head, items: items_of(q.items) })
}

impl ReadQuote {
    /// What the quote was made for (`quote_head`).
    pub fn head(&self) -> Result<&QuoteHead, StoredQuoteError> {
        self.head
            .as_ref()
            .map_err(|field| StoredQuoteError(<serde_json::Error as serde::de::Error>::missing_field(field)))
    }

    /// The items tagged with their budget sub-item and period (`tagged_items`).
    pub fn tagged(&self, catalogue: &super::Catalogue) -> Result<Vec<QuotedItem>, StoredQuoteError> {
        let head = self.head()?;
        let procedure =
            crate::domain::ProcedureCode::parse(&head.procedure_code).ok().and_then(|code| catalogue.procedure(&code));
        let mut items = self.items.clone();
        for i in &mut items {
            let entry = procedure.and_then(|p| {
                let mut same = p.fees.iter().filter(|f| f.id == i.fee);
                let first = same.clone().next();
                same.find(|f| f.in_force(head.as_of)).or(first)
            });
            i.tag = Some(BudgetTag {
                fee: Some(i.fee.clone()),
                budget_subitem: entry.and_then(|f| f.budget_subitem.clone()),
                period: entry.map(|f| f.remittance_period).unwrap_or_default(),
            });
        }
        Ok(items)
    }

    /// The citizen's part per fee kind: (phí, lệ phí) (`citizen_split`).
    pub fn citizen_split(&self) -> (i64, i64) {
        citizen_split(&self.items)
    }
}

/// What a stored quote was made for: the procedure and the as-of date (the case's receipt date),
/// which name the catalogue entry of each item (its name and budget sub-item, for receipts).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QuoteHead {
    pub procedure_code: String,
    pub as_of: chrono::NaiveDate,
}

/// The head of a stored quote.
pub fn quote_head(quote_json: &str) -> Result<QuoteHead, StoredQuoteError> {
    Ok(serde_json::from_str(quote_json)?)
}

/// The citizen's part of a stored quote per fee kind: (phí, lệ phí).
pub fn citizen_split(items: &[QuotedItem]) -> (i64, i64) {
    let phi = items.iter().filter(|i| i.kind == "phi").map(|i| i.citizen_due).sum();
    let le_phi = items.iter().filter(|i| i.kind != "phi").map(|i| i.citizen_due).sum();
    (phi, le_phi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_quote_reads_back_its_items_and_split() {
        let json = r#"{"case_code":null,"procedure_code":"1.000001","as_of":"2024-07-15","policy":{"id":"p","hash":"h"},
            "items":[{"fee":"a","kind":"le_phi","base":10000,"quantity":1,"applied":{"rule":"R1","basis":"NQ 1","effect":"pay_percent 50"},"citizen_due":5000,"budget_due":0,"rounded":false},
                     {"fee":"b","kind":"phi","base":500000,"quantity":1,"applied":null,"citizen_due":500000,"budget_due":0,"rounded":false}],
            "citizen_due":505000,"budget_due":0,"currency":"VND"}"#;
        let items = quoted_items(json).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].basis.as_deref(), Some("R1: NQ 1"));
        assert_eq!(items[1].basis, None);
        assert_eq!(citizen_split(&items), (500_000, 5_000));
        assert!(quoted_items("{}").is_err());
        let head = quote_head(json).unwrap();
        // Read once, the same readings.
        let once = read_quote(json).unwrap();
        assert_eq!(once.items, items);
        assert_eq!(once.citizen_split(), (500_000, 5_000));
        assert_eq!(once.head().unwrap(), &head);
        let headless = read_quote(r#"{"items":[]}"#).unwrap();
        assert!(headless.head().is_err() && quote_head(r#"{"items":[]}"#).is_err());
        assert_eq!((head.procedure_code.as_str(), head.as_of.to_string().as_str()), ("1.000001", "2024-07-15"));
    }

    #[test]
    fn tagged_items_take_sub_item_and_period_from_the_catalogue_in_force() {
        let catalogue = super::super::Catalogue::parse(
            std::path::Path::new("cat.toml"),
            r#"
[[procedure]]
code = "1.000001"
name = "P"
authority = "hdnd"
category = "c"
[[procedure.fee]]
id = "a"
kind = "le_phi"
name = "A"
amount = 10000
budget_subitem = "2771"
remittance_period = "week"
basis = "NQ"
effective_from = "2017-01-01"
"#,
        )
        .unwrap();
        let json = r#"{"procedure_code":"1.000001.000.00.00.H62","as_of":"2024-07-15",
            "items":[{"fee":"a","kind":"le_phi","citizen_due":5000,"budget_due":0,"applied":null},
                     {"fee":"gone","kind":"phi","citizen_due":1,"budget_due":0,"applied":null}]}"#;
        let items = tagged_items(json, &catalogue).unwrap();
        let t0 = items[0].tag.clone().unwrap();
        assert_eq!(
            (t0.fee.as_deref(), t0.budget_subitem.as_deref(), t0.period),
            (Some("a"), Some("2771"), crate::domain::remittance::PeriodKind::Week)
        );
        let t1 = items[1].tag.clone().unwrap();
        assert_eq!((t1.fee.as_deref(), t1.budget_subitem, t1.period.as_str()), (Some("gone"), None, "month"));
    }
}
