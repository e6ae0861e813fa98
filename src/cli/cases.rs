//! `import cases`, `quote` and `policy check`.

use std::path::PathBuf;

use super::{CliError, QuoteArgs, open_store, user_err};
use crate::config::Config;
use crate::domain::Clock;

pub(super) async fn quote(config: &Config, args: QuoteArgs) -> Result<(), CliError> {
    let catalogue = args.catalogue.unwrap_or_else(|| config.catalogue.clone());
    let policy = args.policy.unwrap_or_else(|| config.policy.clone());
    let engine = crate::fees::FeeEngine::load(&catalogue, &policy).map_err(|e| user_err(e.to_string()))?;
    let stored;
    let given_procedure;
    let given_subjects: Vec<crate::domain::Subject>;
    let given_facts: Vec<crate::domain::Fact>;
    let given_unit: Option<crate::domain::UnitCode>;
    let facts = if let Some(code) = &args.case {
        let code = crate::domain::CaseCode::parse(code).map_err(|e| user_err(format!("--case: {e}")))?;
        let store = open_store(config).await?;
        stored = store.get_case(&code).await?.ok_or_else(|| user_err(format!("--case: no case {code}")))?;
        crate::fees::Facts::of_case(&stored.case)
    } else {
        let p = args.procedure.as_deref().unwrap_or_default();
        given_procedure = crate::domain::ProcedureCode::parse(p).map_err(|e| user_err(format!("--procedure: {e}")))?;
        let channel = args
            .channel
            .as_deref()
            .unwrap_or_default()
            .parse::<crate::domain::Channel>()
            .map_err(|e| user_err(format!("--channel: {e}")))?;
        let as_of = crate::domain::BusinessDate::parse(args.received.as_deref().unwrap_or_default())
            .map_err(|e| user_err(format!("--received: {e}")))?;
        given_subjects = args
            .subject
            .iter()
            .map(|s| s.parse::<crate::domain::Subject>().map_err(|e| user_err(format!("--subject: {e}"))))
            .collect::<Result<_, _>>()?;
        given_facts = args
            .fact
            .iter()
            .map(|s| s.parse::<crate::domain::Fact>().map_err(|e| user_err(format!("--fact: {e}"))))
            .collect::<Result<_, _>>()?;
        given_unit = args
            .unit
            .as_deref()
            .map(|u| crate::domain::UnitCode::parse(u).map_err(|e| user_err(format!("--unit: {e}"))))
            .transpose()?;
        let quantity = args.quantity.unwrap_or(1);
        if !(1..=crate::domain::MAX_QUANTITY).contains(&quantity) {
            return Err(user_err(format!("--quantity: must be 1 to {}", crate::domain::MAX_QUANTITY)));
        }
        crate::fees::Facts {
            case_code: None,
            procedure_code: &given_procedure,
            channel,
            subjects: &given_subjects,
            case_facts: &given_facts,
            receiving_unit: given_unit.as_ref(),
            quantity,
            as_of: as_of.naive(),
        }
    };
    let q = engine.quote(&facts).map_err(|e| user_err(e.to_string()))?;
    if args.format == "json" {
        outln!("{}", q.to_json())?;
    } else {
        super::output::stdout(q.to_text().as_bytes())?;
    }
    Ok(())
}

/// Imports a case file in one transaction; each case that changed is printed as `updated` and
/// goes to the audit log with the operator's name, as does the import itself.
pub(super) async fn import_cases(
    config: &Config,
    clock: &dyn Clock,
    file: &std::path::Path,
    operator: &str,
) -> Result<(), CliError> {
    let catalogue = crate::fees::Catalogue::load(&config.catalogue).map_err(|e| user_err(e.to_string()))?;
    let bytes = std::fs::read(file).map_err(|e| user_err(format!("{}: {e}", file.display())))?;
    let shown = file.display().to_string();
    let progress = |n: usize| eprintln!("{shown}: checked {n} records");
    let known = |p: &crate::domain::ProcedureCode| catalogue.procedure(p).is_some();
    let cases =
        crate::cases::parse_cases(file, &bytes, &known, &progress).map_err(|e| user_err(format!("{shown}: {e}")))?;
    eprintln!("{shown}: {} cases valid; writing", cases.len());
    let store = open_store(config).await?;
    let write_progress = |n: usize| eprintln!("{shown}: wrote {n} of {} cases", cases.len());
    let now = clock.now();
    let mut tx = store.write().await?;
    let outcomes = tx.import_cases(&cases, operator, now, &write_progress).await?;
    let counts = crate::store::ImportCounts::of(&outcomes);
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let mut audit = vec![crate::store::AuditEvent::new(
        operator,
        "cases.import",
        &shown,
        serde_json::json!({"sha256": sha256, "cases": cases.len(), "created": counts.created,
                           "updated": counts.updated, "unchanged": counts.unchanged}),
    )];
    for o in outcomes.iter().filter(|o| o.result == crate::store::Upserted::Updated) {
        let details = serde_json::json!({"version": o.version, "source": "cli import", "file": shown});
        audit.push(crate::store::AuditEvent::new(operator, "case.update", o.case_code.as_str(), details));
    }
    crate::ledger::chain::append_audit(&mut tx, &audit, now).await?;
    tx.commit().await?;
    for o in outcomes.iter().filter(|o| o.result == crate::store::Upserted::Updated) {
        outln!("updated {} (now version {})", o.case_code, o.version)?;
    }
    outln!(
        "imported {} cases from {shown}: {} created, {} updated, {} unchanged",
        cases.len(),
        counts.created,
        counts.updated,
        counts.unchanged
    )?;
    Ok(())
}

/// `policy check`: a policy and its includes, its warnings, and optionally its coverage.
pub(super) fn policy_check(
    config: &Config,
    file: &std::path::Path,
    catalogue: Option<PathBuf>,
    coverage: &[String],
) -> Result<(), CliError> {
    let catalogue = catalogue.unwrap_or_else(|| config.catalogue.clone());
    let range = match coverage {
        [] => None,
        [from, to] => {
            let d = |s: &str| {
                crate::domain::BusinessDate::parse(s)
                    .map(crate::domain::BusinessDate::naive)
                    .map_err(|e| user_err(format!("--coverage: {e}")))
            };
            let (from, to) = (d(from)?, d(to)?);
            if to < from {
                return Err(user_err(format!("--coverage: {to} is before {from}")));
            }
            Some((from, to))
        }
        _ => return Err(user_err("--coverage takes two dates: FROM TO")),
    };
    let cat = crate::fees::Catalogue::load(&catalogue).map_err(|e| user_err(e.to_string()))?;
    let policy = crate::fees::Policy::load(file, &cat).map_err(|e| user_err(e.to_string()))?;
    // A rule whose basis is not verified is applied, but finance must know it.
    for w in policy.warnings() {
        eprintln!("warning: {w}");
    }
    outln!(
        "ok: policy {} ({}): {} rules from {} file(s), catalogue {} ({} procedures); hash {}",
        policy.id,
        policy.name,
        policy.rules.len(),
        policy.files.len(),
        catalogue.display(),
        cat.procedures.len(),
        policy.hash
    )?;
    if let Some((from, to)) = range {
        let gaps = crate::fees::FeeEngine::new(cat, policy).coverage(from, to);
        outln!("coverage {from}..{to}: {} gap(s)", gaps.len())?;
        for g in gaps {
            outln!("  {g}")?;
        }
    }
    Ok(())
}
