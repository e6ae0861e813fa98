//! `/api/openapi.json`, generated from the route table: every mounted route appears, with its
//! path parameters, the roles that may call it and the error envelope.

use serde_json::{Map, Value, json};

use super::routes::{Access, Route};

/// The OpenAPI 3.1 document for `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        responses.insert("2XX".into(), json!({"description": "Success."}));
        responses.insert("4XX".into(), json!({"$ref": "#/components/responses/Error"}));
        responses.insert("5XX".into(), json!({"$ref": "#/components/responses/Error"}));
        let security = if r.access.needs_token() {
            json!([{"bearer": []}])
        } else if r.access.needs_session() {
            json!([{"session": []}])
        } else {
            json!([])
        };
        let op = json!({
            "summary": r.summary,
            "operationId": format!("{}{}", r.method.as_str().to_lowercase(), r.path.replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "security": security,
            "x-access": format!("{:?}", r.access),
            "x-roles": if r.access == Access::Gateway { vec!["none (gateway signature)"] } else { r.access.roles() },
            "responses": responses,
        });
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(r.method.as_str().to_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "feerecon",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Fees for online public services: cases, quotes, gateway payments and callbacks, settlement reconciliation and the ledger."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "feerecon_session"}
            },
            "responses": {"Error": {
                "description": "The error envelope.",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}
                    }}}
                }}}
            }}
        }
    })
}
