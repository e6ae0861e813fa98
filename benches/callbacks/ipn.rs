//! VNPAY IPNs as the gateway signs them: the harness's only coupling to the crate's code.
//!
//! Everything else in the harness speaks to `feerecon` through its command line and its HTTP API.
//! Here, and only here, it calls the simulator's signing code (`feerecon::simulator::sign`),
//! which is written apart from the service's verifier and reproduces VNPAY byte for byte (the
//! reference vectors are tested against it). If the refactor moves it, this file is what changes.

use feerecon::simulator::sign;

/// The merchant code and hash secret the service under test and the ceiling servers share.
pub const TMN_CODE: &str = "BENCH0001";
pub const HASH_SECRET: &str = "BENCHSECRETKEY0123456789ABCDEFGH";

/// What the gateway knows of a payment when it calls back: from the service's create answer.
pub struct Payment {
    pub txn_ref: String,
    /// Đồng (VNPAY's `vnp_Amount` is ×100).
    pub amount: i64,
    pub order_info: String,
}

/// The query string of the IPN VNPAY sends for a successful payment of `p`, with the parameters
/// the simulator sends (`src/simulator/mod.rs`, `Sim::callback`), signed with HMAC-SHA512.
pub fn signed_success(p: &Payment, transaction_no: u64, pay_date: &str) -> String {
    let no = transaction_no.to_string();
    let params: Vec<(String, String)> = [
        ("vnp_Amount", (p.amount * 100).to_string()),
        ("vnp_BankCode", "NCB".to_owned()),
        ("vnp_BankTranNo", format!("VNP{no}")),
        ("vnp_CardType", "ATM".to_owned()),
        ("vnp_OrderInfo", p.order_info.clone()),
        ("vnp_PayDate", pay_date.to_owned()),
        ("vnp_ResponseCode", "00".to_owned()),
        ("vnp_TmnCode", TMN_CODE.to_owned()),
        ("vnp_TransactionNo", no.clone()),
        ("vnp_TransactionStatus", "00".to_owned()),
        ("vnp_TxnRef", p.txn_ref.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    sign::vnpay_signed_query(HASH_SECRET, &params)
}

/// Checks a signed IPN query as a merchant must (decode, drop the hash, sort, re-encode, HMAC-SHA512,
/// compare) and returns its `vnp_TxnRef`; `None` when the signature or the merchant is wrong.
pub fn verify(query: &str) -> Option<String> {
    let params = sign::vnpay_check_query(HASH_SECRET, query).ok()?;
    let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
    (get("vnp_TmnCode")? == TMN_CODE).then_some(())?;
    get("vnp_TxnRef")
}

/// A parameter of a URL's query string, decoded (the pay URL's `vnp_OrderInfo`).
pub fn query_param(url: &str, key: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k == key).then(|| sign::query_unescape(v)).flatten()
    })
}
