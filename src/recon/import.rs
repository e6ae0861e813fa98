//! Importing a settlement file (SPEC §7.1): parse it whole with its profile (the pure
//! `settlement` parser), then store its bytes, hash and lines with the audit entry, all or nothing.

use sha2::{Digest as _, Sha256};

use super::{Finance, FinanceError, Result};
use crate::domain::payment::Gateway;
use crate::settlement::Profile;
use crate::store::{AuditEvent, SettlementFile};

impl Finance {
    /// Imported files, in import order (all gateways when `None`).
    pub async fn files(&self, gateway: Option<Gateway>) -> Result<Vec<SettlementFile>> {
        Ok(self.store.settlement_files(gateway).await?)
    }

    /// A file with its exact bytes, as imported.
    pub async fn file(&self, file_id: &str) -> Result<(SettlementFile, Vec<u8>)> {
        self.store
            .settlement_file_bytes(file_id)
            .await?
            .ok_or_else(|| FinanceError::NotFound(format!("no file {file_id}")))
    }

    /// Imports a settlement file: all or nothing. `progress` is called with the lines parsed,
    /// then with the lines written.
    pub async fn import(
        &self,
        gateway: Gateway,
        profile: &str,
        name: &str,
        bytes: &[u8],
        actor: &str,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<SettlementFile> {
        let p = Profile::resolve(&self.profiles, profile).map_err(FinanceError::Invalid)?;
        // A gateway's own profile reads only its gateway's files (canonical serves any): refused
        // before anything is kept, so the same bytes can still be imported for the right gateway.
        if let Some(own) = p.gateway
            && own != gateway
        {
            return Err(FinanceError::Invalid(format!(
                "profile: {:?} reads {own}'s files, not {gateway}'s; import a {gateway} file with the {gateway} profile or canonical",
                p.name
            )));
        }
        let lines = crate::settlement::parse(&p, bytes, &|n| progress(n))
            .map_err(|error| FinanceError::File { name: name.to_owned(), error })?;
        let sha = hex::encode(Sha256::digest(bytes));
        let at = self.clock.now();
        let mut tx = self.store.write().await?;
        // Lines are events a close counts: not while a close of this gateway holds them.
        tx.lock_gateway_events(gateway, false).await?;
        let file = tx.insert_settlement_file(gateway, &p.name, name, bytes, &sha, &lines, actor, at, progress).await?;
        let details =
            serde_json::json!({"gateway": gateway, "name": name, "sha256": file.sha256, "lines": file.line_count});
        crate::ledger::chain::append_audit(
            &mut tx,
            &[AuditEvent::new(actor, "settlement.import", file.file_id.clone(), details)],
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(file)
    }
}
