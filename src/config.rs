//! Configuration: every variable of SPEC §3.1, read once at start-up into typed values.
//!
//! A bad value stops start-up with a message naming the variable; so does a gateway configured in
//! part. Secrets are held in `Secret`, which cannot be printed. Nothing here reads the
//! environment after start-up: the rest of the service takes a `Config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::Secret;

mod collection;
mod dvcqg;
pub use collection::{
    DEFAULT_BUDGET_PAYER, PLACEHOLDER_ORG_NAME, PLACEHOLDER_TAX_CODE, ReceiptConfig, RemittanceConfig, check_tax_code,
};
pub use dvcqg::{AllowedNet, Beneficiary, DvcqgConfig, parse_beneficiary};

/// A configuration problem: which variable and why. Never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

fn err(variable: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { variable: variable.to_owned(), reason: reason.into() }
}

/// Start-up refused for a reason the operator must fix (a key, a policy): the CLI exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupRefused(pub String);

pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone)]
pub struct VnpayConfig {
    pub tmn_code: String,
    pub hash_secret: Secret,
    pub hash_secret_previous: Option<Secret>,
    pub pay_url: String,
    pub api_url: String,
    /// The server's own address, sent as `vnp_IpAddr` with status queries
    /// (`FEERECON_VNPAY_SERVER_IP`; default: the address `FEERECON_LISTEN` binds).
    pub server_ip: std::net::IpAddr,
}

#[derive(Debug, Clone)]
pub struct MomoConfig {
    pub partner_code: String,
    pub access_key: Secret,
    pub secret_key: Secret,
    pub secret_key_previous: Option<Secret>,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct ZalopayConfig {
    pub app_id: String,
    pub key1: Secret,
    pub key2: Secret,
    pub key2_previous: Option<Secret>,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Secret,
    pub secret_previous: Option<Secret>,
}

/// The whole configuration. `Debug` is safe to log: secrets print as `[redacted]`.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://...` or `postgres://...`; may carry a password, hence a `Secret`.
    pub database_url: Secret,
    /// `FEERECON_DB_MAX_CONNECTIONS`: the pool's size (default 16 on PostgreSQL, 8 SQLite readers).
    pub db_max_connections: Option<u32>,
    /// `FEERECON_DB_ACQUIRE_TIMEOUT`: how long a request waits for a pooled connection (30s).
    pub db_acquire_timeout: Duration,
    pub listen: SocketAddr,
    /// Base of the URLs given to gateways; no trailing slash.
    pub public_url: String,
    pub request_timeout: Duration,
    pub max_body: usize,
    pub max_upload: usize,
    pub log_format: LogFormat,
    /// The policy file; `embedded:...` names one compiled into the binary (`crate::embedded`).
    pub policy: PathBuf,
    /// The fee catalogue; `embedded:...` as for `policy`.
    pub catalogue: PathBuf,
    /// The folder of settlement profiles; `embedded:...` as for `policy`.
    pub settlement_profiles: PathBuf,
    pub vnpay: Option<VnpayConfig>,
    pub momo: Option<MomoConfig>,
    pub zalopay: Option<ZalopayConfig>,
    /// The National Public Service Portal's payment platform (`FEERECON_DVCQG_*`).
    pub dvcqg: Option<DvcqgConfig>,
    pub payment_ttl: Duration,
    pub pending_query_after: Duration,
    pub webhook: Option<WebhookConfig>,
    pub notify_max_attempts: u32,
    pub notify_max_backoff: Duration,
    pub ledger_key: PathBuf,
    pub receipts: ReceiptConfig,
    pub remittance: RemittanceConfig,
}

impl Config {
    /// A message about the database that names `FEERECON_DATABASE_URL` and its URL with any
    /// password hidden (`redact_url`), e.g. `FEERECON_DATABASE_URL (postgres://app:***@db/x): ...`.
    pub fn about_database(&self, what: impl std::fmt::Display) -> String {
        format!("FEERECON_DATABASE_URL ({}): {what}", redact_url(self.database_url.expose()))
    }
}

/// A database URL fit to show: the password of its user part and any `password=` or
/// `sslpassword=` parameter replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let mut shown = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@').and_then(|(user, host)| Some((user.split_once(':')?.0, host))) {
                Some((user, host)) => format!("{scheme}://{user}:***@{host}{path}"),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") => {
                    format!("{k}=***")
                }
                _ => p.to_owned(),
            })
            .collect();
        shown = format!("{shown}?{}", params.join("&"));
    }
    shown
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://feerecon.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Parses `30s`, `15m`, `1h`, `90d` (also `500ms`). Zero is refused: every duration here is a
/// timeout or a delay that must pass.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration like 30s, 15m, 1h or 90d"))?;
    let secs = match unit {
        "ms" => return positive(Duration::from_millis(n), s),
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("{s:?} is not a duration like 30s, 15m, 1h or 90d")),
    };
    let secs = secs.ok_or_else(|| format!("{s:?} is too long"))?;
    positive(Duration::from_secs(secs), s)
}

fn positive(d: Duration, s: &str) -> Result<Duration, String> {
    if d.is_zero() { Err(format!("{s:?} must be longer than zero")) } else { Ok(d) }
}

/// Parses a size: `1MiB`, `512MiB`, `64KiB`, `1GiB`, or plain bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("{s:?} is not a size like 1MiB"))?;
    let mul: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("{s:?} is not a size like 64KiB, 1MiB or 1GiB")),
    };
    let v = n.checked_mul(mul).ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 { Err(format!("{s:?} must be larger than zero")) } else { Ok(v) }
}

fn check_url(variable: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim().trim_end_matches('/');
    let rest = v.strip_prefix("http://").or_else(|| v.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(v.to_owned()),
        _ => Err(err(variable, format!("{v:?} is not an http:// or https:// URL"))),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`, so tests can pass a map instead of the environment.
    /// An empty value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let secret = |k: &str| var(k).map(Secret::new);
        let duration = |k: &str, default: &str| {
            let v = var(k).unwrap_or_else(|| default.to_owned());
            parse_duration(&v).map_err(|r| err(k, r))
        };
        let size = |k: &str, default: &str| {
            let v = var(k).unwrap_or_else(|| default.to_owned());
            parse_size(&v).map_err(|r| err(k, r))
        };
        let path = |k: &str, default: &str| PathBuf::from(var(k).unwrap_or_else(|| default.to_owned()));

        let database_url = var("FEERECON_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            // The value may hold a password: name the variable, not the value.
            return Err(err("FEERECON_DATABASE_URL", "must start with sqlite:, postgres:// or postgresql://"));
        }
        let listen_raw = var("FEERECON_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_raw
            .parse()
            .map_err(|_| err("FEERECON_LISTEN", format!("{listen_raw:?} is not an address like 127.0.0.1:8080")))?;
        let public_url = match var("FEERECON_PUBLIC_URL") {
            Some(u) => check_url("FEERECON_PUBLIC_URL", &u)?,
            None => format!("http://{listen}"),
        };
        let log_format = match var("FEERECON_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(err("FEERECON_LOG_FORMAT", format!("{other:?} must be text or json"))),
        };

        let vnpay = match (var("FEERECON_VNPAY_TMN_CODE"), secret("FEERECON_VNPAY_HASH_SECRET")) {
            (Some(tmn_code), Some(hash_secret)) => Some(VnpayConfig {
                tmn_code,
                hash_secret,
                hash_secret_previous: secret("FEERECON_VNPAY_HASH_SECRET_PREVIOUS"),
                pay_url: check_url(
                    "FEERECON_VNPAY_PAY_URL",
                    &var("FEERECON_VNPAY_PAY_URL")
                        .unwrap_or_else(|| "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html".into()),
                )?,
                api_url: check_url(
                    "FEERECON_VNPAY_API_URL",
                    &var("FEERECON_VNPAY_API_URL")
                        .unwrap_or_else(|| "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction".into()),
                )?,
                server_ip: match var("FEERECON_VNPAY_SERVER_IP") {
                    None => listen.ip(),
                    Some(ip) => ip.trim().parse().map_err(|_| {
                        err("FEERECON_VNPAY_SERVER_IP", format!("{ip:?} is not an IP address like 203.0.113.10"))
                    })?,
                },
            }),
            (None, None) => {
                if var("FEERECON_VNPAY_HASH_SECRET_PREVIOUS").is_some() {
                    return Err(err(
                        "FEERECON_VNPAY_HASH_SECRET_PREVIOUS",
                        "is set without FEERECON_VNPAY_HASH_SECRET",
                    ));
                }
                None
            }
            (Some(_), None) => {
                return Err(err("FEERECON_VNPAY_HASH_SECRET", "is required when FEERECON_VNPAY_TMN_CODE is set"));
            }
            (None, Some(_)) => {
                return Err(err("FEERECON_VNPAY_TMN_CODE", "is required when FEERECON_VNPAY_HASH_SECRET is set"));
            }
        };

        let momo_parts = [
            ("FEERECON_MOMO_PARTNER_CODE", var("FEERECON_MOMO_PARTNER_CODE")),
            ("FEERECON_MOMO_ACCESS_KEY", var("FEERECON_MOMO_ACCESS_KEY")),
            ("FEERECON_MOMO_SECRET_KEY", var("FEERECON_MOMO_SECRET_KEY")),
        ];
        let momo = match &momo_parts {
            [(_, Some(partner_code)), (_, Some(access_key)), (_, Some(secret_key))] => Some(MomoConfig {
                partner_code: partner_code.clone(),
                access_key: Secret::new(access_key.clone()),
                secret_key: Secret::new(secret_key.clone()),
                secret_key_previous: secret("FEERECON_MOMO_SECRET_KEY_PREVIOUS"),
                endpoint: check_url(
                    "FEERECON_MOMO_ENDPOINT",
                    &var("FEERECON_MOMO_ENDPOINT").unwrap_or_else(|| "https://test-payment.momo.vn".into()),
                )?,
            }),
            parts => {
                if let Some((missing, _)) =
                    parts.iter().find(|(_, v)| v.is_none()).filter(|_| parts.iter().any(|(_, v)| v.is_some()))
                {
                    return Err(err(missing, "is required when any other FEERECON_MOMO_* credential is set"));
                }
                if var("FEERECON_MOMO_SECRET_KEY_PREVIOUS").is_some() {
                    return Err(err("FEERECON_MOMO_SECRET_KEY_PREVIOUS", "is set without FEERECON_MOMO_SECRET_KEY"));
                }
                None
            }
        };

        let zalo_parts = [
            ("FEERECON_ZALOPAY_APP_ID", var("FEERECON_ZALOPAY_APP_ID")),
            ("FEERECON_ZALOPAY_KEY1", var("FEERECON_ZALOPAY_KEY1")),
            ("FEERECON_ZALOPAY_KEY2", var("FEERECON_ZALOPAY_KEY2")),
        ];
        let zalopay = match &zalo_parts {
            [(_, Some(app_id)), (_, Some(key1)), (_, Some(key2))] => {
                if app_id.parse::<u64>().is_err() {
                    return Err(err("FEERECON_ZALOPAY_APP_ID", format!("{app_id:?} must be a number")));
                }
                Some(ZalopayConfig {
                    app_id: app_id.clone(),
                    key1: Secret::new(key1.clone()),
                    key2: Secret::new(key2.clone()),
                    key2_previous: secret("FEERECON_ZALOPAY_KEY2_PREVIOUS"),
                    endpoint: check_url(
                        "FEERECON_ZALOPAY_ENDPOINT",
                        &var("FEERECON_ZALOPAY_ENDPOINT").unwrap_or_else(|| "https://sb-openapi.zalopay.vn".into()),
                    )?,
                })
            }
            parts => {
                if let Some((missing, _)) =
                    parts.iter().find(|(_, v)| v.is_none()).filter(|_| parts.iter().any(|(_, v)| v.is_some()))
                {
                    return Err(err(missing, "is required when any other FEERECON_ZALOPAY_* credential is set"));
                }
                if var("FEERECON_ZALOPAY_KEY2_PREVIOUS").is_some() {
                    return Err(err("FEERECON_ZALOPAY_KEY2_PREVIOUS", "is set without FEERECON_ZALOPAY_KEY2"));
                }
                None
            }
        };

        let dvcqg = dvcqg::from_lookup(&var, listen.ip())?;

        let webhook = match (var("FEERECON_PORTAL_WEBHOOK_URL"), secret("FEERECON_PORTAL_WEBHOOK_SECRET")) {
            (Some(url), Some(current)) => Some(WebhookConfig {
                url: check_url("FEERECON_PORTAL_WEBHOOK_URL", &url)?,
                secret: current,
                secret_previous: secret("FEERECON_PORTAL_WEBHOOK_SECRET_PREVIOUS"),
            }),
            (Some(_), None) => {
                return Err(err(
                    "FEERECON_PORTAL_WEBHOOK_SECRET",
                    "is required when FEERECON_PORTAL_WEBHOOK_URL is set",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "FEERECON_PORTAL_WEBHOOK_URL",
                    "is required when FEERECON_PORTAL_WEBHOOK_SECRET is set",
                ));
            }
            (None, None) => {
                if var("FEERECON_PORTAL_WEBHOOK_SECRET_PREVIOUS").is_some() {
                    return Err(err(
                        "FEERECON_PORTAL_WEBHOOK_SECRET_PREVIOUS",
                        "is set without FEERECON_PORTAL_WEBHOOK_SECRET",
                    ));
                }
                None
            }
        };

        let attempts_raw = var("FEERECON_NOTIFY_MAX_ATTEMPTS").unwrap_or_else(|| "20".into());
        let notify_max_attempts: u32 =
            attempts_raw.trim().parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                err("FEERECON_NOTIFY_MAX_ATTEMPTS", format!("{attempts_raw:?} must be a number from 1 to 1000"))
            })?;

        let receipts = ReceiptConfig::read(&var)?;
        let remittance = RemittanceConfig::read(&var)?;

        let max_connections = match var("FEERECON_DB_MAX_CONNECTIONS") {
            Some(v) => Some(v.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                err("FEERECON_DB_MAX_CONNECTIONS", format!("{v:?} is not a positive number of connections"))
            })?),
            None => None,
        };
        Ok(Config {
            database_url: Secret::new(database_url),
            db_max_connections: max_connections,
            db_acquire_timeout: duration("FEERECON_DB_ACQUIRE_TIMEOUT", "30s")?,
            listen,
            public_url,
            request_timeout: duration("FEERECON_REQUEST_TIMEOUT", "30s")?,
            max_body: size("FEERECON_MAX_BODY", "1MiB")?,
            max_upload: size("FEERECON_MAX_UPLOAD", "512MiB")?,
            log_format,
            // The defaults are the fixtures compiled into the binary; a file the environment
            // names is read from disk and wins.
            policy: path("FEERECON_POLICY", crate::embedded::POLICY),
            catalogue: path("FEERECON_CATALOGUE", crate::embedded::CATALOGUE),
            settlement_profiles: path("FEERECON_SETTLEMENT_PROFILES", crate::embedded::PROFILES),
            vnpay,
            momo,
            zalopay,
            dvcqg,
            payment_ttl: duration("FEERECON_PAYMENT_TTL", "15m")?,
            pending_query_after: duration("FEERECON_PENDING_QUERY_AFTER", "15m")?,
            webhook,
            notify_max_attempts,
            notify_max_backoff: duration("FEERECON_NOTIFY_MAX_BACKOFF", "1h")?,
            ledger_key: path("FEERECON_LEDGER_KEY", "feerecon-ledger.key"),
            receipts,
            remittance,
        })
    }
}

#[cfg(test)]
mod tests;
