//! The `FEERECON_DVCQG_*` variables: the National Public Service Portal's payment platform
//! (reference/dvcqg-payment.md). Its endpoint paths are given at onboarding, so every URL is a
//! full URL and none has a default; a province enables the gateway with its partner code and
//! secret, and must then give every URL and the beneficiary account (a part is refused).

use std::net::IpAddr;

use super::{ConfigError, check_url, err};
use crate::domain::Secret;

/// The province's revenue account, sent in every INIT (`TKThuHuong`, `MaNHThuHuong`,
/// `TenTKThuHuong`, reference §4.2 [S]): where the platform's money arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beneficiary {
    pub account: String,
    pub bank_code: String,
    pub name: String,
}

/// An allowed source of reverse lookups: one address, or a network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl AllowedNet {
    /// Parses `203.0.113.7`, `203.0.113.0/24` or an IPv6 form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr =
            ip.parse().map_err(|_| format!("{s:?} is not an address or a network like 203.0.113.0/24"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as its IPv4 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
                IpAddr::V6(v) => u128::from(v),
            }
        };
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let prefix = u32::from(self.prefix);
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
        bits(self.addr) & mask == bits(ip) & mask
    }
}

#[derive(Debug, Clone)]
pub struct DvcqgConfig {
    /// `MaDoiTac`: the partner code the platform issued to the province.
    pub partner_code: String,
    /// The shared secret appended to every `MaXacThuc` string (reference §3).
    pub secret: Secret,
    pub secret_previous: Option<Secret>,
    pub init_url: String,
    pub query_url: String,
    pub bill_url: String,
    pub beneficiary: Beneficiary,
    /// A static bearer token, when the province reaches the platform through its integration
    /// gateway (LGSP/NGSP) [I: TD's `AccessToken`, reference §4].
    pub token: Option<Secret>,
    /// The server's own address, sent as `Ip` (both implementations send their own [S]).
    pub server_ip: IpAddr,
    /// Who may ask what a case owes (`POST /gateway/dvcqg/lookup`, unsigned in the public code):
    /// empty refuses everyone.
    pub lookup_allow: Vec<AllowedNet>,
}

/// Reads the `FEERECON_DVCQG_*` variables through `var` (empty counts as unset).
pub fn from_lookup(
    var: &dyn Fn(&str) -> Option<String>,
    listen_ip: IpAddr,
) -> Result<Option<DvcqgConfig>, ConfigError> {
    let (code, secret) = (var("FEERECON_DVCQG_PARTNER_CODE"), var("FEERECON_DVCQG_SECRET"));
    const PARTS: [&str; 7] = [
        "FEERECON_DVCQG_SECRET_PREVIOUS",
        "FEERECON_DVCQG_INIT_URL",
        "FEERECON_DVCQG_QUERY_URL",
        "FEERECON_DVCQG_BILL_URL",
        "FEERECON_DVCQG_BENEFICIARY",
        "FEERECON_DVCQG_TOKEN",
        "FEERECON_DVCQG_LOOKUP_ALLOW",
    ];
    let (partner_code, secret) = match (code, secret) {
        (Some(c), Some(s)) => (c.trim().to_owned(), Secret::new(s)),
        (Some(_), None) => {
            return Err(err("FEERECON_DVCQG_SECRET", "is required when FEERECON_DVCQG_PARTNER_CODE is set"));
        }
        (None, Some(_)) => {
            return Err(err("FEERECON_DVCQG_PARTNER_CODE", "is required when FEERECON_DVCQG_SECRET is set"));
        }
        (None, None) => {
            if let Some(set) = PARTS.iter().find(|k| var(k).is_some()) {
                return Err(err(set, "is set without FEERECON_DVCQG_PARTNER_CODE and FEERECON_DVCQG_SECRET"));
            }
            return Ok(None);
        }
    };
    if partner_code.is_empty() || partner_code.len() > 50 || partner_code.contains(['|', '"']) {
        return Err(err("FEERECON_DVCQG_PARTNER_CODE", "must be 1 to 50 characters, without | or \""));
    }
    let url = |k: &str| match var(k) {
        Some(u) => check_url(k, &u),
        None => Err(err(k, "is required when the DVCQG gateway is enabled (the platform's full URL)")),
    };
    let init_url = url("FEERECON_DVCQG_INIT_URL")?;
    let query_url = url("FEERECON_DVCQG_QUERY_URL")?;
    let bill_url = url("FEERECON_DVCQG_BILL_URL")?;
    let beneficiary = match var("FEERECON_DVCQG_BENEFICIARY") {
        None => return Err(err("FEERECON_DVCQG_BENEFICIARY", "is required when the DVCQG gateway is enabled")),
        Some(b) => parse_beneficiary(&b).map_err(|r| err("FEERECON_DVCQG_BENEFICIARY", r))?,
    };
    let server_ip = match var("FEERECON_DVCQG_SERVER_IP") {
        None => listen_ip,
        Some(ip) => ip
            .trim()
            .parse()
            .map_err(|_| err("FEERECON_DVCQG_SERVER_IP", format!("{ip:?} is not an IP address like 203.0.113.10")))?,
    };
    let lookup_allow = match var("FEERECON_DVCQG_LOOKUP_ALLOW") {
        None => vec![],
        Some(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(AllowedNet::parse)
            .collect::<Result<_, _>>()
            .map_err(|r| err("FEERECON_DVCQG_LOOKUP_ALLOW", r))?,
    };
    Ok(Some(DvcqgConfig {
        partner_code,
        secret,
        secret_previous: var("FEERECON_DVCQG_SECRET_PREVIOUS").map(Secret::new),
        init_url,
        query_url,
        bill_url,
        beneficiary,
        token: var("FEERECON_DVCQG_TOKEN").map(Secret::new),
        server_ip,
        lookup_allow,
    }))
}

/// `account,bank code,account name` (the name may hold commas; the first two fields may not).
pub fn parse_beneficiary(v: &str) -> Result<Beneficiary, String> {
    let mut parts = v.splitn(3, ',').map(str::trim);
    let (Some(account), Some(bank_code), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("must be \"account,bank code,account name\"".into());
    };
    if account.is_empty() || !account.chars().all(|c| c.is_ascii_alphanumeric()) || account.len() > 34 {
        return Err(format!("account {account:?} must be 1 to 34 letters or digits"));
    }
    if bank_code.is_empty() || !bank_code.chars().all(|c| c.is_ascii_alphanumeric()) || bank_code.len() > 20 {
        return Err(format!("bank code {bank_code:?} must be 1 to 20 letters or digits"));
    }
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("account name must be one line of 1 to 200 characters".into());
    }
    Ok(Beneficiary { account: account.into(), bank_code: bank_code.into(), name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses_only() {
        let n = AllowedNet::parse("203.0.113.0/24").unwrap();
        assert!(n.contains("203.0.113.77".parse().unwrap()));
        assert!(n.contains("::ffff:203.0.113.1".parse().unwrap()));
        assert!(!n.contains("203.0.114.1".parse().unwrap()));
        let one = AllowedNet::parse("198.51.100.7").unwrap();
        assert!(one.contains("198.51.100.7".parse().unwrap()) && !one.contains("198.51.100.8".parse().unwrap()));
        assert!(AllowedNet::parse("2001:db8::/32").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(!AllowedNet::parse("2001:db8::/32").unwrap().contains("127.0.0.1".parse().unwrap()));
        for bad in ["x", "10.0.0.0/33", "10.0.0.0/x", ""] {
            assert!(AllowedNet::parse(bad).is_err(), "{bad}");
        }
    }

    fn read(pairs: &[(&str, &str)]) -> Result<Option<DvcqgConfig>, ConfigError> {
        let full = [
            ("FEERECON_DVCQG_PARTNER_CODE", "000.00.00.H62"),
            ("FEERECON_DVCQG_SECRET", "s"),
            ("FEERECON_DVCQG_INIT_URL", "https://p/init"),
            ("FEERECON_DVCQG_QUERY_URL", "https://p/query"),
            ("FEERECON_DVCQG_BILL_URL", "https://p/bill"),
            ("FEERECON_DVCQG_BENEFICIARY", "1234567890,970415,Sở Tài chính"),
        ];
        let get = |k: &str| {
            pairs
                .iter()
                .chain(full.iter())
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
                .filter(|v| !v.is_empty())
        };
        from_lookup(&get, "127.0.0.1".parse().unwrap())
    }

    #[test]
    fn a_bad_dvcqg_value_names_its_variable() {
        let c = read(&[]).unwrap().unwrap();
        assert_eq!((c.server_ip.to_string(), c.lookup_allow.len(), c.token.is_none()), ("127.0.0.1".into(), 0, true));
        for (k, v) in [
            ("FEERECON_DVCQG_INIT_URL", "ftp://p/init"),
            ("FEERECON_DVCQG_BILL_URL", "p/bill"),
            ("FEERECON_DVCQG_BENEFICIARY", "12 34,970415,X"),
            ("FEERECON_DVCQG_LOOKUP_ALLOW", "127.0.0.1, nowhere"),
            ("FEERECON_DVCQG_SERVER_IP", "host"),
            ("FEERECON_DVCQG_PARTNER_CODE", "A|B"),
            ("FEERECON_DVCQG_QUERY_URL", ""),
        ] {
            let e = read(&[(k, v)]).unwrap_err();
            assert_eq!(e.variable, k, "{v}: {e}");
            assert!(!e.to_string().contains("Secret"), "{e}");
        }
    }

    #[test]
    fn the_beneficiary_is_account_bank_and_name() {
        let b = parse_beneficiary("1234567890, 970415 ,Sở Tài chính tỉnh Vĩnh Phúc, thu phí").unwrap();
        assert_eq!((b.account.as_str(), b.bank_code.as_str()), ("1234567890", "970415"));
        assert_eq!(b.name, "Sở Tài chính tỉnh Vĩnh Phúc, thu phí");
        for bad in ["1234", "1234,970415", "12 34,970415,X", "1234,,X", "1234,970415,"] {
            assert!(parse_beneficiary(bad).is_err(), "{bad}");
        }
    }
}
