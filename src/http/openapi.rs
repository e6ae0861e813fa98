//! `/api/openapi.json`, generated from the route table: every mounted route appears with its
//! path parameters, query parameters and headers, its request body and success answers (schemas
//! from the handlers' Rust types, `ToSchema`/`IntoParams`, registered on each `Route`), the roles
//! that may call it and the error envelope of SPEC §4.1 for every 4xx and 5xx.

use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
};
use utoipa::{PartialSchema as _, ToSchema as _};

use super::error::ErrorEnvelope;
use super::routes::{Access, Route};

/// The name of the shared error answer in `components.responses`.
const ERROR: &str = "Error";

fn method(m: &axum::http::Method) -> HttpMethod {
    match m.as_str() {
        "GET" => HttpMethod::Get,
        "PUT" => HttpMethod::Put,
        "POST" => HttpMethod::Post,
        "DELETE" => HttpMethod::Delete,
        "PATCH" => HttpMethod::Patch,
        "HEAD" => HttpMethod::Head,
        _ => HttpMethod::Options,
    }
}

fn content(schema: RefOr<utoipa::openapi::schema::Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// The OpenAPI 3.1 document for `routes`.
pub fn document(routes: &[Route]) -> OpenApi {
    let mut schemas = BTreeMap::new();
    let mut paths = PathsBuilder::new();
    // One PathItem per path, several methods each.
    let mut items: Vec<(&str, PathItem)> = Vec::new();
    for r in routes {
        let mut op = OperationBuilder::new()
            .summary(Some(r.summary))
            .operation_id(Some(format!(
                "{}{}",
                r.method.as_str().to_lowercase(),
                r.path.replace(['/', '{', '}', '.', '-'], "_")
            )))
            .tag(r.path.split('/').find(|s| !s.is_empty() && *s != "api" && *s != "v1").unwrap_or("other"));
        for name in r.path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(String::schema())),
            );
        }
        for p in &r.doc.parameters {
            op = op.parameter(p.clone());
        }
        if let Some((media, required)) = &r.doc.body {
            let mut b =
                RequestBodyBuilder::new().required(Some(if *required { Required::True } else { Required::False }));
            for (t, s) in media {
                b = b.content(*t, content(s.clone()));
            }
            op = op.request_body(Some(b.build()));
        }
        let mut responses = ResponsesBuilder::new();
        if r.doc.answers.is_empty() && r.access.is_page() {
            // Dashboard pages and forms: HTML for people, documented lightly.
            let res = if r.method == axum::http::Method::GET {
                ResponseBuilder::new()
                    .description("An HTML page (a login redirect without a session).")
                    .content("text/html", content(super::routes::bytes_schema("text/html")))
            } else {
                ResponseBuilder::new().description("Done: a redirect (303) to the page that shows the result.")
            };
            let status = if r.method == axum::http::Method::GET { "200" } else { "303" };
            responses = responses.response(status, res.build());
        }
        for a in &r.doc.answers {
            let mut res = ResponseBuilder::new().description(a.description);
            for (t, s) in &a.content {
                res = res.content(*t, content(s.clone()));
            }
            responses = responses.response(a.status.to_string(), res.build());
        }
        if r.access != Access::Gateway && !r.access.is_page() {
            responses = responses
                .response("4XX", RefOr::Ref(Ref::from_response_name(ERROR)))
                .response("5XX", RefOr::Ref(Ref::from_response_name(ERROR)));
        }
        op = op.responses(responses.build());
        let requirement = if r.access.needs_token() {
            Some(SecurityRequirement::new("bearer", Vec::<String>::new()))
        } else if r.access.needs_session() {
            Some(SecurityRequirement::new("session", Vec::<String>::new()))
        } else {
            None
        };
        op = op.securities(Some(requirement.into_iter().collect::<Vec<_>>()));
        let roles = if r.access == Access::Gateway { vec!["none (gateway signature)"] } else { r.access.roles() };
        let mut ext = utoipa::openapi::extensions::Extensions::default();
        ext.insert("x-access".into(), serde_json::Value::String(format!("{:?}", r.access)));
        ext.insert("x-roles".into(), serde_json::json!(roles));
        let op = op.extensions(Some(ext)).build();
        for (n, s) in &r.doc.schemas {
            schemas.entry(n.clone()).or_insert_with(|| s.clone());
        }
        let item = PathItem::new(method(&r.method), op);
        match items.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, existing)) => existing.merge_operations(item),
            None => items.push((r.path, item)),
        }
    }
    for (p, item) in items {
        paths = paths.path(p, item);
    }
    let mut error_schemas = Vec::new();
    ErrorEnvelope::<'static>::schemas(&mut error_schemas);
    error_schemas.push((ErrorEnvelope::<'static>::name().into_owned(), ErrorEnvelope::<'static>::schema()));
    for (n, s) in error_schemas {
        schemas.entry(n).or_insert(s);
    }
    let error = ResponseBuilder::new()
        .description("The error envelope: a code of `ErrorCode` and a message for people.")
        .content("application/json", content(RefOr::Ref(Ref::from_schema_name(ErrorEnvelope::<'static>::name()))))
        .build();
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .response(ERROR, error)
        .security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()))
        .security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("feerecon_session"))))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("feerecon")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Fees for online public services: cases, quotes, gateway payments and callbacks, settlement reconciliation and the ledger. Every error is `{\"error\": {\"code\", \"message\"}}`; timestamps are RFC 3339 at +07:00, dates YYYY-MM-DD, amounts whole đồng.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}
