//! `/api/openapi.json` against the server itself: every mounted route is documented with its
//! success answers, the error envelope, its query parameters and its request body; the document
//! parses as OpenAPI 3.1; and real answers validate against their schemas, so the schemas cannot
//! drift from the handlers.

use feerecon::domain::Role;
use feerecon::http::routes::Access;
use feerecon::simulator::SimOutcome;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, case_body, json as read, spawn_app, spawn_gateway_app};

async fn document(app: &TestApp) -> Value {
    let res = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A token of a role the route allows.
fn role_for(access: Access) -> Option<Role> {
    [Role::Portal, Role::Finance, Role::Auditor, Role::Admin].into_iter().find(|r| access.allows(*r))
}

/// The path with each `{param}` replaced by a value no record has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "zz-nothing".to_owned() } else { seg.to_owned() })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a request got: status and, for an error, its code and message.
async fn outcome(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    if status < 300 {
        return (status, String::new());
    }
    (status, text)
}

#[tokio::test]
async fn every_route_is_documented_with_its_query_body_answers_and_errors() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let doc = document(&app).await;
    // The document is OpenAPI 3.1 as a third-party parser reads it.
    let text = doc.to_string();
    let parsed = oas3::from_json(&text).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert!(parsed.openapi.starts_with("3.1"), "{}", parsed.openapi);
    assert_eq!(
        doc["components"]["responses"]["Error"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorEnvelope"
    );
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for code in ["invalid_field", "idempotency_key_reused", "four_eyes_required", "day_closed", "payload_too_large"] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "ErrorCode lacks {code}: {codes}");
    }

    // Every reference resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "{all:?}");
    for r in &all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("a remote reference {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }

    let mut tokens = std::collections::HashMap::new();
    let mut problems = Vec::new();
    let routes = feerecon::http::all_routes();
    assert!(routes.len() > 60, "only {} routes", routes.len());
    for r in &routes {
        let m = r.method.as_str().to_lowercase();
        let op = &doc["paths"][r.path][&m];
        let name = format!("{} {}", r.method, r.path);
        if !op.is_object() {
            problems.push(format!("{name}: not in the document"));
            continue;
        }
        // A success answer with a schema for each media type (204 has no body).
        let responses = op["responses"].as_object().unwrap();
        let successes: Vec<_> = responses.iter().filter(|(s, _)| s.starts_with('2') || s.starts_with('3')).collect();
        if successes.is_empty() {
            problems.push(format!("{name}: no success answer"));
        }
        for (status, res) in &successes {
            if status.as_str() == "204" || status.as_str() == "303" {
                continue;
            }
            match res["content"].as_object() {
                Some(c) if !c.is_empty() && c.values().all(|m| m["schema"].is_object()) => {}
                _ => problems.push(format!("{name}: answer {status} has no schema")),
            }
        }
        let api = r.path.starts_with("/api/");
        if api {
            for range in ["4XX", "5XX"] {
                if responses.get(range).map(|e| &e["$ref"]) != Some(&json!("#/components/responses/Error")) {
                    problems.push(format!("{name}: {range} is not the error envelope"));
                }
            }
        }
        let documented_query = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        let documented_body = op["requestBody"]["content"].as_object().is_some_and(|c| !c.is_empty());
        for p in op["parameters"].as_array().into_iter().flatten() {
            if !p["schema"].is_object() {
                problems.push(format!("{name}: parameter {} has no schema", p["name"]));
            }
        }
        if r.path == "/api/v1/cases/{case_code}/payments" && r.method == "POST" {
            let key = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key");
            assert!(key.is_some_and(|k| k["in"] == "header" && k["required"] == true), "{op}");
        }
        if r.access.needs_token() && op["security"] != json!([{"bearer": []}]) {
            problems.push(format!("{name}: no bearer security"));
        }
        if !api || r.path == "/api/openapi.json" {
            continue;
        }
        // Ground truth from the handler itself: an unknown query parameter changes the answer
        // only when the handler reads the query; an unknown body field is named only when it
        // reads the body.
        let role = role_for(r.access).unwrap();
        if let std::collections::hash_map::Entry::Vacant(e) = tokens.entry(role) {
            e.insert(app.token_for(role).await);
        }
        let token = &tokens[&role];
        let url = app.url(&concrete(r.path));
        let send = |query: bool, body: Option<Value>| {
            let mut req =
                app.client.request(r.method.clone(), if query { format!("{url}?zz_probe=1") } else { url.clone() });
            req = req.bearer_auth(token).header("Idempotency-Key", "probe");
            if let Some(b) = body {
                req = req.json(&b);
            }
            req.send()
        };
        let writes = r.method == "POST" || r.method == "PUT";
        let body = writes.then(|| json!({}));
        let plain = outcome(send(false, body.clone()).await.unwrap()).await;
        let probed = outcome(send(true, body).await.unwrap()).await;
        if plain != probed && !documented_query {
            problems.push(format!("{name}: reads a query ({probed:?}) but documents no query parameter"));
        }
        if writes {
            let (_, text) = outcome(send(false, Some(json!({"zz_probe": 1}))).await.unwrap()).await;
            if text.contains("zz_probe") && !documented_body {
                problems.push(format!("{name}: reads a JSON body ({text}) but documents none"));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}

/// The schema of `path` `method`'s `status` JSON answer, as a standalone JSON Schema whose
/// `$ref`s resolve into the document's components. Objects refuse properties they do not
/// declare (`unevaluatedProperties`), so a field a handler adds without its type fails too.
fn answer_schema(doc: &Value, path: &str, method: &str, status: &str) -> Value {
    let s = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"].clone();
    assert!(s.is_object(), "{method} {path} {status} has no JSON schema");
    let mut components = doc["components"].clone();
    fn close(v: &mut Value, in_all_of: bool) {
        match v {
            Value::Object(m) => {
                let all_of = m.contains_key("allOf");
                if (m.contains_key("properties") && !in_all_of) || all_of {
                    m.insert("unevaluatedProperties".into(), json!(false));
                }
                for (k, child) in m.iter_mut() {
                    close(child, k == "allOf");
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| close(c, in_all_of)),
            _ => {}
        }
    }
    // Components used inside an allOf stay open: the allOf closes over them.
    let composed: Vec<String> = components["schemas"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["allOf"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["$ref"].as_str().map(|r| r.rsplit('/').next().unwrap().to_owned()))
        .collect();
    for (name, schema) in components["schemas"].as_object_mut().unwrap() {
        if !composed.contains(name) {
            close(schema, false);
        }
    }
    let mut root = s;
    close(&mut root, false);
    let mut root = json!({"allOf": [root]});
    root["components"] = components;
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root
}

fn assert_valid(doc: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let schema = answer_schema(doc, path, method, &status.to_string());
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{method} {path}: bad schema: {e}"));
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{method} {path} {status} does not match its schema:\n{}\n{body:#}", errors.join("\n"));
}

mod real_answers_validate_against_their_documented_schemas {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        validate(Db::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        validate(Db::Postgres).await;
    }
}

async fn validate(db: Db) {
    {
        let Some((app, sim)) = spawn_gateway_app(db, &[]).await else { return };
        let doc = document(&app).await;
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        let code = "000.00.12.H62-240715-0007";
        let mut body = case_body(code);
        // A procedure and channel that owe money, so the case is paid through a gateway.
        body["procedure_code"] = json!("1.009974");
        body["channel"] = json!("counter");
        let (s, v) = read(app.put_json(&format!("/api/v1/cases/{code}"), &portal, &body).await).await;
        assert_eq!(s, 201, "{v}");
        assert_valid(&doc, "/api/v1/cases/{case_code}", "put", s, &v);
        let (s, v) = read(app.get(&format!("/api/v1/cases/{code}"), &portal).await).await;
        assert_valid(&doc, "/api/v1/cases/{case_code}", "get", s, &v);
        let (s, v) = read(app.get(&format!("/api/v1/cases/{code}/fee"), &portal).await).await;
        assert_eq!(s, 200, "{v}");
        assert_valid(&doc, "/api/v1/cases/{case_code}/fee", "get", s, &v);
        let (s, p) = app.create_payment(&portal, code, "vnpay", "k-1").await;
        assert_eq!(s, 201, "{p}");
        assert_valid(&doc, "/api/v1/cases/{case_code}/payments", "post", s, &p);
        let id = p["payment_id"].as_str().unwrap().to_owned();
        reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
        sim.pay(p["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Default::default()).await.unwrap();
        let paid = app.wait_for_status(&portal, &id, "paid").await;
        assert_valid(&doc, "/api/v1/payments/{payment_id}", "get", 200, &paid);
        let (s, v) = read(app.get(&format!("/api/v1/cases/{code}/payments"), &portal).await).await;
        assert_valid(&doc, "/api/v1/cases/{case_code}/payments", "get", s, &v);
        let (s, v) = read(app.get(&format!("/api/v1/payments/{id}/callbacks"), &finance).await).await;
        assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
        assert_valid(&doc, "/api/v1/payments/{payment_id}/callbacks", "get", s, &v);
        let (s, v) = read(app.get(&format!("/api/v1/cases/{code}/receipts"), &portal).await).await;
        assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
        assert_valid(&doc, "/api/v1/cases/{case_code}/receipts", "get", s, &v);
        let (s, v) = read(app.get("/api/v1/ledger?limit=5", &finance).await).await;
        assert!(!v["items"].as_array().unwrap().is_empty(), "{v}");
        assert_valid(&doc, "/api/v1/ledger", "get", s, &v);
        let (s, v) = read(app.get("/api/v1/audit-log", &finance).await).await;
        assert_valid(&doc, "/api/v1/audit-log", "get", s, &v);
        let (s, v) = read(app.get("/api/v1/ledger/verify", &finance).await).await;
        assert_valid(&doc, "/api/v1/ledger/verify", "get", s, &v);
        let today = paid["paid_at"].as_str().unwrap()[..10].to_owned();
        let (s, v) = read(app.get(&format!("/api/v1/ledger/balances?date={today}"), &finance).await).await;
        assert_eq!(s, 200, "{v}");
        assert_valid(&doc, "/api/v1/ledger/balances", "get", s, &v);
        let (s, v) = read(app.get(&format!("/api/v1/days/{today}"), &finance).await).await;
        assert_valid(&doc, "/api/v1/days/{date}", "get", s, &v);
        // The error envelope, from a handler and from the framework.
        let (s, v) = read(app.get("/api/v1/cases/000.00.12.H62-240715-0999", &portal).await).await;
        assert_eq!(s, 404);
        let envelope = json!({"$ref": "#/components/schemas/ErrorEnvelope", "components": doc["components"].clone()});
        assert!(jsonschema::is_valid(&envelope, &v), "{v}");
        let (s, v) =
            read(app.client.get(app.url("/api/v1/payments?flag=nonsense")).bearer_auth(&finance).send().await.unwrap())
                .await;
        assert_eq!(s, 422);
        assert!(jsonschema::is_valid(&envelope, &v), "{v}");
        app.stop().await;
    }
}
