//! The fee engine (SPEC §5): the catalogue of procedures and their fee items, the province's
//! policy of waivers and reductions, and the quote: what a case owes, item by item, with the rule
//! and legal basis that decided each amount.
//!
//! Pure: loading reads files, quoting touches nothing. `FeeEngine` holds a checked catalogue and
//! policy with an index of which rules can touch which fee item, so a quote only looks at the
//! rules that matter for its procedure and checks dates, channel and subjects.

mod catalogue;
mod conditions;
mod coverage;
#[cfg(test)]
mod law_tests;
mod policy;
mod policy_toml;
mod quote;
pub mod stored;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use catalogue::{Authority, Catalogue, FeeItem, FeeKind, Procedure};
pub use coverage::{Gap, GapKind};
pub use policy::{BasisStatus, Effect, Policy, Rounding, RoundingMode, Rule, UnitPattern};
pub use quote::{
    Applied, AppliedRule, Facts, FeeEngine, PolicyRef, Quote, QuoteError, QuoteItem, QuoteItemJson, QuoteJson,
};

/// A catalogue or policy file refused: which file, which line (0 when the whole file), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct LoadError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl LoadError {
    /// An error at byte `offset` of `text`.
    pub(crate) fn at(file: &Path, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let line = text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1;
        Self { file: file.to_owned(), line, message: message.into() }
    }

    pub(crate) fn whole(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_owned(), line: 0, message: message.into() }
    }

    /// A TOML syntax or shape error, at its span.
    pub(crate) fn toml(file: &Path, text: &str, e: &toml::de::Error) -> Self {
        let message = e.message().to_owned();
        match e.span() {
            Some(span) => Self::at(file, text, span.start, message),
            None => Self::whole(file, message),
        }
    }
}

/// Reads a UTF-8 text file (a BOM is dropped), from the disk or embedded in the binary.
pub(crate) fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = crate::embedded::read(path).map_err(|e| LoadError::whole(path, format!("cannot read: {e}")))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let line = bytes[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        LoadError { file: path.to_owned(), line, message: "not valid UTF-8".into() }
    })
}
