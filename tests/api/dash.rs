//! Driving the dashboard as a browser does, without one: log in through the login form, keep the
//! session cookie, read each page's CSRF token from its forms and send it back, follow nothing
//! automatically (every redirect is asserted). And a simulated business day with exceptions.

use feerecon::domain::payment::Gateway;
use feerecon::domain::{Clock as _, Role};
use feerecon::simulator::{Discrepancies, Faults, SimOutcome, Simulator};
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use crate::helpers::TestApp;

/// Every dashboard user of the tests has this password.
pub const PASSWORD: &str = "correct horse battery staple";

/// An answer: status, headers and body.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of a `Set-Cookie` for `name`, if the answer sets it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    #[track_caller]
    pub fn assert(&self, status: u16, needle: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(needle), "{needle:?} not in the {status} page:\n{}", self.body);
        self
    }
}

/// The first `name="csrf" value="..."` of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).unwrap_or_else(|| panic!("no CSRF field in:\n{html}"));
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A client that follows no redirect.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn page(res: reqwest::Response) -> Page {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap();
    Page { status, headers, body }
}

/// Fetches `path` with no session.
pub async fn anonymous_get(app: &TestApp, path: &str) -> Page {
    page(client().get(app.url(path)).send().await.unwrap()).await
}

/// A logged-in person.
pub struct Dash {
    pub base: String,
    pub client: reqwest::Client,
    /// `feerecon_session=...` (and the language, when switched).
    pub cookies: String,
    pub csrf: String,
}

impl Dash {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Page {
        page(self.client.get(self.url(path)).header(COOKIE, &self.cookies).send().await.unwrap()).await
    }

    /// Posts a form with this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &serde_urlencoded::to_string(&all).unwrap()).await
    }

    /// Posts a urlencoded body as given (no token added).
    pub async fn post_raw(&self, path: &str, body: &str) -> Page {
        let req = self
            .client
            .post(self.url(path))
            .header(COOKIE, &self.cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        page(req.send().await.unwrap()).await
    }

    /// Submits the upload form (multipart), with `csrf` as given.
    pub async fn upload(&self, csrf: &str, gateway: &str, profile: &str, name: &str, bytes: &[u8]) -> Page {
        let boundary = "----feerecon-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in [("csrf", csrf), ("gateway", gateway), ("profile", profile)] {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self
            .client
            .post(self.url("/settlements"))
            .header(COOKIE, &self.cookies)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        page(req.send().await.unwrap()).await
    }

    /// Follows a job page until the job ends (a bounded wait); returns its last page.
    pub async fn wait_job(&self, job_path: &str) -> Page {
        for _ in 0..300 {
            let p = self.get(job_path).await;
            if p.status != 200 || !p.body.contains(r#"data-running="true""#) {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the job {job_path} did not end");
    }
}

/// Adds a dashboard user with `PASSWORD`.
pub async fn add_person(app: &TestApp, name: &str, role: Role) -> feerecon::store::User {
    let hash = feerecon::auth::hash_password(&feerecon::domain::Secret::new(PASSWORD)).unwrap();
    feerecon::accounts::add_user(&app.store, "test", name, role, Some(hash), chrono::Utc::now()).await.unwrap()
}

/// The login page, and the login cookie it set.
pub async fn login_form(app: &TestApp) -> (Page, String) {
    let p = anonymous_get(app, "/login").await;
    assert_eq!(p.status, 200, "{}", p.body);
    let cookie = p.set_cookie("feerecon_login").expect("the login page sets its token cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (p, cookie)
}

/// Submits the login form.
pub async fn submit_login(app: &TestApp, name: &str, password: &str, next: &str) -> Page {
    let (form, cookie) = login_form(app).await;
    let body = serde_urlencoded::to_string([
        ("csrf", csrf_of(&form.body).as_str()),
        ("name", name),
        ("password", password),
        ("next", next),
    ])
    .unwrap();
    let req = client()
        .post(app.url("/login"))
        .header(COOKIE, cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    page(req.send().await.unwrap()).await
}

/// Logs in through the form as an existing user.
pub async fn log_in(app: &TestApp, name: &str) -> Dash {
    let p = submit_login(app, name, PASSWORD, "/").await;
    assert_eq!(p.status, 303, "login of {name}: {}", p.body);
    let session = p.set_cookie("feerecon_session").expect("a session cookie");
    let cookies = session.split(';').next().unwrap().to_owned();
    let mut d = Dash { base: app.address.clone(), client: client(), cookies, csrf: String::new() };
    let home = d.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    d.csrf = csrf_of(&home.body);
    d
}

/// Adds a user with `role` and logs in.
pub async fn person(app: &TestApp, name: &str, role: Role) -> Dash {
    add_person(app, name, role).await;
    log_in(app, name).await
}

const GPLX: &str = "1.002804";

/// A VNPAY day made by the simulator: `paid` cases paid (the first settled `wrong_by` short
/// when given), one left out of the file (`missing_in_settlement`) and one line no payment has
/// (`missing_in_records`), played yesterday so that the day is over. Returns the date and the
/// day's settlement file (VNPAY profile).
pub async fn simulated_day(app: &TestApp, sim: &Simulator, paid: u32) -> (String, Vec<u8>) {
    let portal = app.token_for(Role::Portal).await;
    // The day is yesterday, so that it is over and can be closed; the clock comes back after.
    app.clock.advance(-chrono::TimeDelta::days(1));
    let today = feerecon::domain::BusinessDate::of(app.clock.now());
    let date = today.to_string();
    let mut refs = Vec::new();
    for seq in 1..=paid {
        let code = app.new_case(&portal, seq, GPLX, "counter", &date).await;
        let (s, p) = app.create_payment(&portal, &code, "vnpay", "k").await;
        assert_eq!(s, 201, "{p}");
        reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
        let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
        sim.pay(&txn_ref, SimOutcome::Success, &Faults::default()).await.unwrap();
        app.wait_for_status(&portal, p["payment_id"].as_str().unwrap(), "paid").await;
        refs.push(txn_ref);
    }
    app.clock.advance(chrono::TimeDelta::days(1));
    let d = Discrepancies { missing: refs.iter().take(1).cloned().collect(), extra: 1, ..Default::default() };
    let (lines, _) = sim.settlement_lines(Gateway::Vnpay, today.naive(), &d);
    let profile =
        feerecon::settlement::Profile::resolve(std::path::Path::new("fixtures/settlement-profiles"), "vnpay").unwrap();
    (date, Simulator::settlement_file(&profile, &lines))
}

/// The path of the job an answer redirects to.
#[track_caller]
pub fn job_path(p: &Page) -> String {
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location().starts_with("/jobs/job_"), "{}", p.location());
    p.location().to_owned()
}

/// The exception keys a day page lists, with their states.
pub fn exception_keys(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<tr data-key=\"") {
        rest = &rest[at + "<tr data-key=\"".len()..];
        let key = rest[..rest.find('"').unwrap()].to_owned();
        let st = rest.find("data-state=\"").map(|i| {
            let r = &rest[i + "data-state=\"".len()..];
            r[..r.find('"').unwrap()].to_owned()
        });
        out.push((html_unescape(&key), st.unwrap_or_default()));
    }
    out
}

/// Undoes askama's escaping of an attribute value.
pub fn html_unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// A path segment as the dashboard writes it in links (RFC 3986's unreserved set kept).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}
