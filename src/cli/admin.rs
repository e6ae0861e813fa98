//! `user add|list` and `token create|list|revoke`: administration on the server; changes are
//! audited. Listings never show a password hash or a token's secret.

use anyhow::Context as _;

use std::io::{IsTerminal, Read, Write};

use super::{CliError, TokenCommand, open_store, user_err};
use crate::config::{Config, parse_duration};
use crate::domain::{Clock, Role, Secret, Timestamp};

pub(super) fn read_password() -> Result<Secret, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (empty for a machine client that cannot log in): ");
        let _ = std::io::stderr().flush();
    }
    let mut raw = String::new();
    if stdin.is_terminal() {
        stdin.read_line(&mut raw).context("Failed to read the password")?;
    } else {
        stdin.lock().read_to_string(&mut raw).context("Failed to read the password from standard input")?;
    }
    let password = raw.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&raw);
    Ok(Secret::new(password))
}

pub(super) async fn user_add(
    config: &Config,
    clock: &dyn Clock,
    operator: &str,
    name: &str,
    role: &str,
) -> Result<(), CliError> {
    crate::auth::check_user_name(name).map_err(user_err)?;
    let role: Role = role.parse().map_err(|e: crate::domain::UnknownTag| user_err(format!("--role: {e}")))?;
    let password = read_password()?;
    let hash = if password.expose().is_empty() {
        None
    } else {
        if password.expose().chars().count() < 12 {
            return Err(user_err("the password must have at least 12 characters (or be empty for a machine client)"));
        }
        let p = password.clone();
        Some(
            tokio::task::spawn_blocking(move || crate::auth::hash_password(&p))
                .await
                .context("password hashing panicked")??,
        )
    };
    let store = open_store(config).await?;
    let user = crate::accounts::add_user(&store, operator, name, role, hash, clock.now()).await?;
    outln!(
        "user {} added with role {}{}",
        user.name,
        user.role,
        if user.password_hash.is_some() { "" } else { " (machine client: no dashboard login)" }
    )?;
    Ok(())
}

pub(super) async fn user_list(config: &Config, clock: &dyn Clock) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let users = store.list_users().await?;
    let tokens = store.list_tokens().await?;
    let now = clock.now();
    outln!(
        "{:<20}  {:<8}  {:<7}  {:>6}  {:>7}  {:>7}  created",
        "name",
        "role",
        "login",
        "active",
        "revoked",
        "expired"
    )?;
    for u in users {
        let mine = tokens.iter().filter(|t| t.user_name == u.name);
        let (mut active, mut revoked, mut expired) = (0, 0, 0);
        for t in mine {
            if t.revoked_at.is_some() {
                revoked += 1;
            } else if t.expires_at.is_some_and(|e| e <= now) {
                expired += 1;
            } else {
                active += 1;
            }
        }
        outln!(
            "{:<20}  {:<8}  {:<7}  {active:>6}  {revoked:>7}  {expired:>7}  {}",
            u.name,
            u.role.to_string(),
            if u.password_hash.is_some() { "yes" } else { "machine" },
            show_time(Some(u.created_at))
        )?;
    }
    Ok(())
}

fn show_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| Timestamp::at(t).to_vn_string())
}

/// A token command; `operator` (who acts, for the audit log) is unused by `list`.
pub(super) async fn token(
    config: &Config,
    clock: &dyn Clock,
    operator: &str,
    action: TokenCommand,
) -> Result<(), CliError> {
    let store = open_store(config).await?;
    match action {
        TokenCommand::Create { user, name, expires } => {
            let expires_at = match expires {
                None => None,
                Some(e) => {
                    let d = parse_duration(&e).map_err(|r| user_err(format!("--expires: {r}")))?;
                    let d = chrono::TimeDelta::from_std(d).map_err(|_| user_err("--expires: too long"))?;
                    Some(clock.now() + d)
                }
            };
            let owner =
                store.user_by_name(&user).await?.ok_or_else(|| user_err(format!("--user: no user named {user:?}")))?;
            let t = crate::auth::new_token();
            crate::accounts::add_token(&store, operator, &t, &owner, name.as_deref(), clock.now(), expires_at).await?;
            outln!("token id: {}", t.id)?;
            outln!("user: {} ({}), expires: {}", owner.name, owner.role, show_time(expires_at))?;
            outln!("{}", t.token.expose())?;
            Ok(())
        }
        TokenCommand::List => {
            let tokens = store.list_tokens().await?;
            outln!("{:<16}  {:<20}  {:<20}  {:<25}  {:<25}  revoked", "id", "user", "label", "created", "expires")?;
            for t in tokens {
                outln!(
                    "{:<16}  {:<20}  {:<20}  {:<25}  {:<25}  {}",
                    t.token_id,
                    t.user_name,
                    t.label.as_deref().unwrap_or("-"),
                    show_time(Some(t.created_at)),
                    show_time(t.expires_at),
                    show_time(t.revoked_at)
                )?;
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => match crate::accounts::revoke_token(&store, operator, &id, clock.now()).await? {
            crate::accounts::Revoked::Now => {
                outln!("token {id} revoked")?;
                Ok(())
            }
            crate::accounts::Revoked::Already(at) => {
                outln!("token {id} was already revoked at {}; nothing changed", show_time(Some(at)))?;
                Ok(())
            }
            crate::accounts::Revoked::NoSuchToken => {
                Err(user_err(format!("no token with id {id:?} (see `feerecon token list`)")))
            }
        },
    }
}
