//! The demo's HTTP client of the server it started: every step of the day goes through the
//! service's API, with a bearer token, as the portal and finance staff would call it.

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::Value;

/// The server's base URL and one HTTP client.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

/// An answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error envelope's `code`, if the body is one.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

impl Api {
    pub fn new(base: String) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("Failed to build the HTTP client")?;
        Ok(Self { base, client })
    }

    /// Sends a request and reads the answer, whatever its status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.with_context(|| format!("{method} {path}: no answer"))?;
        let status = res.status().as_u16();
        let text = res.text().await.with_context(|| format!("{method} {path}: cannot read the answer"))?;
        Ok(Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
    }

    /// A request that must succeed (2xx): its JSON body.
    pub async fn ok(&self, method: Method, path: &str, token: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let a = self.call(method.clone(), path, token, body, None).await?;
        if !(200..300).contains(&a.status) {
            bail!("{method} {path}: {} {}", a.status, a.body);
        }
        Ok(a.body)
    }

    /// A plain-text page that must succeed (`/metrics`).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}: no answer"))?;
        if !res.status().is_success() {
            bail!("GET {path}: {}", res.status());
        }
        res.text().await.with_context(|| format!("GET {path}: cannot read the answer"))
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        self.ok(Method::GET, path, token, None).await
    }

    /// Every item of a paged list (`{"items", "next_cursor"}`), following the cursor.
    pub async fn all(&self, path: &str, token: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let page = self.get(&page_path, token).await?;
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// A body that is not JSON (a settlement upload, the ledger's zip).
    pub async fn bytes(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "text/csv").body(b);
        }
        let res = req.send().await.with_context(|| format!("{method} {path}: no answer"))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.with_context(|| format!("{method} {path}: cannot read the answer"))?;
        Ok((status, bytes.to_vec()))
    }

    /// A page as a citizen's browser opens it (the gateway's pay page).
    pub async fn open(&self, url: &str) -> anyhow::Result<u16> {
        let res = self.client.get(url).send().await.with_context(|| format!("GET {url}: no answer"))?;
        Ok(res.status().as_u16())
    }
}
