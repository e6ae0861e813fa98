//! Configuration: every variable of SPEC §3.1, read once at start-up into typed values.
//!
//! A bad value stops start-up with a message naming the variable; so does a gateway configured in
//! part. Secrets are held in `Secret`, which cannot be printed. Nothing here reads the
//! environment after start-up: the rest of the service takes a `Config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::Secret;
use crate::domain::receipt::SymbolLetters;

mod dvcqg;
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

/// What receipts say about the collecting organisation (NĐ 254/2026 Art. 23(2)(đ)) and how they
/// are numbered (TT 91/2026 Phụ lục II).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptConfig {
    /// `FEERECON_RECEIPT_ORG_NAME`: the collecting organisation's name.
    pub org_name: String,
    /// `FEERECON_RECEIPT_TAX_CODE`: its tax code (mã số thuế), 10 digits or 10-3.
    pub tax_code: String,
    /// `FEERECON_RECEIPT_SYMBOL_LETTERS`: the two letters of the receipt symbol it registered.
    pub letters: SymbolLetters,
    /// `FEERECON_RECEIPT_BUDGET_PAYER`: the payer named on receipts the budget pays.
    pub budget_payer: String,
    /// Whether the organisation's name and tax code were configured (`false`: placeholders,
    /// which `serve` warns about; such receipts are not valid vouchers).
    pub configured: bool,
}

/// The placeholders of an unconfigured organisation.
pub const PLACEHOLDER_ORG_NAME: &str = "Đơn vị thu phí, lệ phí (chưa cấu hình)";
pub const PLACEHOLDER_TAX_CODE: &str = "0000000000";
pub const DEFAULT_BUDGET_PAYER: &str = "Ngân sách nhà nước (ngân sách tỉnh hỗ trợ)";

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            org_name: PLACEHOLDER_ORG_NAME.into(),
            tax_code: PLACEHOLDER_TAX_CODE.into(),
            letters: SymbolLetters::parse("AA").expect("AA is two of the twenty letters"),
            budget_payer: DEFAULT_BUDGET_PAYER.into(),
            configured: false,
        }
    }
}

/// What the remittance statements (issue 19) name beside the organisation of `ReceiptConfig`:
/// the fields of a C1-02/NS transfer the service cannot read from the ledger
/// (../shared/reference/after-collection.md §2.2 [S: the form's fields]). Every value is optional:
/// a statement shows what is missing as a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemittanceConfig {
    /// `FEERECON_REMITTANCE_CHAPTER`: the collecting agency's chapter code (mã chương), three
    /// digits, entered on every line of the transfer [S: form field]; its value comes from the
    /// agency's registration with the treasury [I: the chapter list was not read].
    pub chapter: Option<String>,
    /// `FEERECON_REMITTANCE_PAYER_ACCOUNT`: the account the transfer is debited from (the
    /// collection account the gateways settle into), as written on the transfer.
    pub payer_account: Option<String>,
    /// `FEERECON_REMITTANCE_TREASURY`: the State Treasury (KBNN) office holding the target accounts.
    pub treasury: Option<String>,
    /// `FEERECON_REMITTANCE_PHI_ACCOUNT`: the fee account awaiting the budget (tài khoản phí chờ
    /// nộp ngân sách) phí go to (NĐ 120/2016 Art. 3(2)(a) as amended) [S].
    pub phi_account: Option<String>,
    /// `FEERECON_REMITTANCE_LE_PHI_ACCOUNT`: the account lệ phí go to: the lệ phí account awaiting
    /// the budget, or the budget's revenue account (same article) [S].
    pub le_phi_account: Option<String>,
}

/// A remittance text from configuration: one line of at most 100 characters.
fn remittance_text(variable: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.chars().count() > 100 || v.chars().any(char::is_control) {
        return Err(err(variable, "must be one line of at most 100 characters"));
    }
    Ok(v.to_owned())
}

/// A tax code (mã số thuế): 10 digits, or 10 digits, `-` and 3 digits for a dependent unit.
pub fn check_tax_code(v: &str) -> Result<(), String> {
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let ok = (b.len() == 10 && digits(b)) || (b.len() == 14 && digits(&b[..10]) && b[10] == b'-' && digits(&b[11..]));
    if ok { Ok(()) } else { Err(format!("{v:?} is not a tax code (10 digits, or 10 digits, '-' and 3 digits)")) }
}

/// A receipt text from configuration: one line, at most 300 characters.
fn receipt_text(variable: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.chars().count() > 300 || v.chars().any(char::is_control) {
        return Err(err(variable, "must be one line of at most 300 characters"));
    }
    Ok(v.to_owned())
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

        let receipts = {
            let org = var("FEERECON_RECEIPT_ORG_NAME");
            let tax = var("FEERECON_RECEIPT_TAX_CODE");
            if let Some(t) = &tax {
                check_tax_code(t.trim()).map_err(|r| err("FEERECON_RECEIPT_TAX_CODE", r))?;
            }
            let defaults = ReceiptConfig::default();
            let letters = match var("FEERECON_RECEIPT_SYMBOL_LETTERS") {
                Some(l) => {
                    SymbolLetters::parse(l.trim()).map_err(|e| err("FEERECON_RECEIPT_SYMBOL_LETTERS", e.to_string()))?
                }
                None => defaults.letters.clone(),
            };
            ReceiptConfig {
                configured: org.is_some() && tax.is_some(),
                org_name: match org {
                    Some(o) => receipt_text("FEERECON_RECEIPT_ORG_NAME", &o)?,
                    None => defaults.org_name,
                },
                tax_code: tax.map_or(defaults.tax_code, |t| t.trim().to_owned()),
                letters,
                budget_payer: match var("FEERECON_RECEIPT_BUDGET_PAYER") {
                    Some(b) => receipt_text("FEERECON_RECEIPT_BUDGET_PAYER", &b)?,
                    None => defaults.budget_payer,
                },
            }
        };

        let remittance = {
            let text = |k: &str| var(k).map(|v| remittance_text(k, &v)).transpose();
            let chapter = var("FEERECON_REMITTANCE_CHAPTER").map(|v| v.trim().to_owned());
            if let Some(c) = &chapter
                && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(err("FEERECON_REMITTANCE_CHAPTER", format!("{c:?} is not a chapter code (three digits)")));
            }
            RemittanceConfig {
                chapter,
                payer_account: text("FEERECON_REMITTANCE_PAYER_ACCOUNT")?,
                treasury: text("FEERECON_REMITTANCE_TREASURY")?,
                phi_account: text("FEERECON_REMITTANCE_PHI_ACCOUNT")?,
                le_phi_account: text("FEERECON_REMITTANCE_LE_PHI_ACCOUNT")?,
            }
        };

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
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn remittance_settings_are_optional_and_checked() {
        assert_eq!(cfg(&[]).unwrap().remittance, RemittanceConfig::default());
        let c = cfg(&[("FEERECON_REMITTANCE_CHAPTER", " 418 "), ("FEERECON_REMITTANCE_PHI_ACCOUNT", "3511.1.1234567")])
            .unwrap();
        assert_eq!(
            (c.remittance.chapter.as_deref(), c.remittance.phi_account.as_deref()),
            (Some("418"), Some("3511.1.1234567"))
        );
        let e = cfg(&[("FEERECON_REMITTANCE_CHAPTER", "41")]).unwrap_err();
        assert!(e.to_string().contains("FEERECON_REMITTANCE_CHAPTER"), "{e}");
        let e = cfg(&[("FEERECON_REMITTANCE_TREASURY", "KBNN\nX")]).unwrap_err();
        assert!(e.to_string().contains("FEERECON_REMITTANCE_TREASURY"), "{e}");
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url.expose(), "sqlite://feerecon.db?mode=rwc");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.max_body, 1 << 20);
        assert_eq!(c.max_upload, 512 << 20);
        assert_eq!(c.payment_ttl, Duration::from_secs(900));
        assert_eq!(c.notify_max_attempts, 20);
        assert_eq!(c.notify_max_backoff, Duration::from_secs(3600));
        assert!(c.vnpay.is_none() && c.momo.is_none() && c.zalopay.is_none() && c.webhook.is_none());
        assert_eq!(c.receipts, ReceiptConfig::default());
        assert_eq!(c.policy, PathBuf::from("embedded:fixtures/policies/vinh-phuc.toml"));
        assert_eq!(c.catalogue, PathBuf::from("embedded:fixtures/catalogue.toml"));
        assert_eq!(c.settlement_profiles, PathBuf::from("embedded:fixtures/settlement-profiles"));
        assert!(!c.receipts.configured);
    }

    #[test]
    fn receipts_take_the_organisation_and_letters_from_the_environment() {
        let c = cfg(&[
            ("FEERECON_RECEIPT_ORG_NAME", "Sở Tư pháp tỉnh Phú Thọ"),
            ("FEERECON_RECEIPT_TAX_CODE", "2600123456-001"),
            ("FEERECON_RECEIPT_SYMBOL_LETTERS", "TP"),
        ])
        .unwrap();
        assert!(c.receipts.configured);
        assert_eq!(c.receipts.org_name, "Sở Tư pháp tỉnh Phú Thọ");
        assert_eq!(c.receipts.tax_code, "2600123456-001");
        assert_eq!(c.receipts.letters.symbol(2026), "26TTP");
        assert!(check_tax_code("0101234567").is_ok());
    }

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["", "10", "1w", "-1s", "0s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["1MB", "", "0", "x"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("FEERECON_REQUEST_TIMEOUT", "soon")], "FEERECON_REQUEST_TIMEOUT"),
            (&[("FEERECON_MAX_BODY", "lots")], "FEERECON_MAX_BODY"),
            (&[("FEERECON_LISTEN", "localhost")], "FEERECON_LISTEN"),
            (&[("FEERECON_LOG_FORMAT", "xml")], "FEERECON_LOG_FORMAT"),
            (&[("FEERECON_DATABASE_URL", "mysql://u:pw@h/db")], "FEERECON_DATABASE_URL"),
            (&[("FEERECON_NOTIFY_MAX_ATTEMPTS", "0")], "FEERECON_NOTIFY_MAX_ATTEMPTS"),
            (&[("FEERECON_PUBLIC_URL", "ftp://x")], "FEERECON_PUBLIC_URL"),
            (
                &[
                    ("FEERECON_VNPAY_TMN_CODE", "T1"),
                    ("FEERECON_VNPAY_HASH_SECRET", "s"),
                    ("FEERECON_VNPAY_SERVER_IP", "host"),
                ],
                "FEERECON_VNPAY_SERVER_IP",
            ),
            (&[("FEERECON_RECEIPT_TAX_CODE", "12345")], "FEERECON_RECEIPT_TAX_CODE"),
            (&[("FEERECON_RECEIPT_TAX_CODE", "0101234567-01")], "FEERECON_RECEIPT_TAX_CODE"),
            (&[("FEERECON_RECEIPT_SYMBOL_LETTERS", "AF")], "FEERECON_RECEIPT_SYMBOL_LETTERS"),
            (&[("FEERECON_RECEIPT_SYMBOL_LETTERS", "abc")], "FEERECON_RECEIPT_SYMBOL_LETTERS"),
            (&[("FEERECON_RECEIPT_ORG_NAME", "two\nlines")], "FEERECON_RECEIPT_ORG_NAME"),
        ];
        for (pairs, variable) in cases {
            assert_eq!(cfg(pairs).unwrap_err().variable, *variable);
        }
    }

    #[test]
    fn a_gateway_configured_in_part_is_refused() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("FEERECON_VNPAY_TMN_CODE", "T1")], "FEERECON_VNPAY_HASH_SECRET"),
            (&[("FEERECON_VNPAY_HASH_SECRET", "s")], "FEERECON_VNPAY_TMN_CODE"),
            (&[("FEERECON_VNPAY_HASH_SECRET_PREVIOUS", "s")], "FEERECON_VNPAY_HASH_SECRET_PREVIOUS"),
            (&[("FEERECON_MOMO_PARTNER_CODE", "P"), ("FEERECON_MOMO_SECRET_KEY", "k")], "FEERECON_MOMO_ACCESS_KEY"),
            (&[("FEERECON_MOMO_SECRET_KEY_PREVIOUS", "k")], "FEERECON_MOMO_SECRET_KEY_PREVIOUS"),
            (&[("FEERECON_ZALOPAY_APP_ID", "2554")], "FEERECON_ZALOPAY_KEY1"),
            (
                &[("FEERECON_ZALOPAY_APP_ID", "abc"), ("FEERECON_ZALOPAY_KEY1", "a"), ("FEERECON_ZALOPAY_KEY2", "b")],
                "FEERECON_ZALOPAY_APP_ID",
            ),
            (&[("FEERECON_DVCQG_PARTNER_CODE", "P")], "FEERECON_DVCQG_SECRET"),
            (&[("FEERECON_DVCQG_SECRET", "s")], "FEERECON_DVCQG_PARTNER_CODE"),
            (&[("FEERECON_DVCQG_TOKEN", "t")], "FEERECON_DVCQG_TOKEN"),
            (&[("FEERECON_DVCQG_PARTNER_CODE", "P"), ("FEERECON_DVCQG_SECRET", "s")], "FEERECON_DVCQG_INIT_URL"),
            (
                &[
                    ("FEERECON_DVCQG_PARTNER_CODE", "P"),
                    ("FEERECON_DVCQG_SECRET", "s"),
                    ("FEERECON_DVCQG_INIT_URL", "https://p/init"),
                    ("FEERECON_DVCQG_QUERY_URL", "https://p/query"),
                    ("FEERECON_DVCQG_BILL_URL", "https://p/bill"),
                ],
                "FEERECON_DVCQG_BENEFICIARY",
            ),
            (&[("FEERECON_PORTAL_WEBHOOK_URL", "http://portal")], "FEERECON_PORTAL_WEBHOOK_SECRET"),
            (&[("FEERECON_PORTAL_WEBHOOK_SECRET", "s")], "FEERECON_PORTAL_WEBHOOK_URL"),
        ];
        for (pairs, variable) in cases {
            assert_eq!(cfg(pairs).unwrap_err().variable, *variable, "{pairs:?}");
        }
    }

    #[test]
    fn gateways_are_enabled_by_their_credentials_and_secrets_stay_hidden() {
        let c = cfg(&[
            ("FEERECON_VNPAY_TMN_CODE", "T1"),
            ("FEERECON_VNPAY_HASH_SECRET", "vnpay-hash-secret-value"),
            ("FEERECON_MOMO_PARTNER_CODE", "P"),
            ("FEERECON_MOMO_ACCESS_KEY", "momo-access-value"),
            ("FEERECON_MOMO_SECRET_KEY", "momo-secret-value"),
            ("FEERECON_DATABASE_URL", "postgres://u:db-password-value@h/db"),
        ])
        .unwrap();
        assert!(c.vnpay.is_some() && c.momo.is_some() && c.zalopay.is_none() && c.dvcqg.is_none());
        let d = cfg(&[
            ("FEERECON_DVCQG_PARTNER_CODE", "000.00.00.H62"),
            ("FEERECON_DVCQG_SECRET", "dvcqg-secret-value"),
            ("FEERECON_DVCQG_TOKEN", "dvcqg-token-value"),
            ("FEERECON_DVCQG_INIT_URL", "https://testthanhtoan.dichvucong.gov.vn/api/init/"),
            ("FEERECON_DVCQG_QUERY_URL", "https://testthanhtoan.dichvucong.gov.vn/api/query"),
            ("FEERECON_DVCQG_BILL_URL", "https://testthanhtoan.dichvucong.gov.vn/api/bill"),
            ("FEERECON_DVCQG_BENEFICIARY", "1234567890,970415,Sở Tài chính"),
            ("FEERECON_DVCQG_LOOKUP_ALLOW", "203.0.113.0/24, 198.51.100.7"),
        ])
        .unwrap();
        let dv = d.dvcqg.as_ref().unwrap();
        assert_eq!(
            (dv.init_url.as_str(), dv.lookup_allow.len()),
            ("https://testthanhtoan.dichvucong.gov.vn/api/init", 2)
        );
        assert!(format!("{d:?}").contains("000.00.00.H62") && !format!("{d:?}").contains("dvcqg-token-value"));
        let shown = format!("{c:?}{d:?}");
        for secret in [
            "vnpay-hash-secret-value",
            "momo-access-value",
            "momo-secret-value",
            "db-password-value",
            "dvcqg-secret-value",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked");
        }
    }
}
