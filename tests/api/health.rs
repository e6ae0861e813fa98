//! Health, readiness, metrics, and the error envelope for what the framework refuses.

use crate::both_backends;
use crate::helpers::{error_code, json};
use feerecon::domain::Role;

both_backends! {
    async fn health_and_readiness_answer(app: TestApp) {
        let res = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "ready\n");
    }
}

both_backends! {
    async fn metrics_count_requests_by_route_and_show_stored_state(app: TestApp) {
        let token = app.token_for(Role::Portal).await;
        for _ in 0..3 {
            app.get("/api/v1/cases/000.00.12.H62-240715-0009", &token).await;
        }
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(
            text.contains(r#"feerecon_http_requests_total{route="/api/v1/cases/{case_code}",method="GET",status="404"} 3"#),
            "{text}"
        );
        assert!(text.contains("# TYPE feerecon_http_request_duration_seconds histogram"), "{text}");
        assert!(text.contains("feerecon_cases 0"), "{text}");
    }
}

both_backends! {
    async fn framework_refusals_use_the_error_envelope(app: TestApp) {
        let token = app.token_for(Role::Portal).await;
        // No such route.
        let (status, v) = json(app.client.get(app.url("/nowhere")).send().await.unwrap()).await;
        assert_eq!((status, error_code(&v)), (404, "not_found"));
        // Wrong method on a known route.
        let res = app.client.delete(app.url("/api/v1/cases/000.00.12.H62-240715-0001")).bearer_auth(&token).send().await.unwrap();
        assert!(res.headers().get("allow").is_some());
        let (status, v) = json(res).await;
        assert_eq!((status, error_code(&v)), (405, "method_not_allowed"));
        // Malformed JSON.
        let res = app.client.put(app.url("/api/v1/cases/000.00.12.H62-240715-0001")).bearer_auth(&token)
            .header("content-type", "application/json").body("{\"case_code\": ").send().await.unwrap();
        let (status, v) = json(res).await;
        assert_eq!((status, error_code(&v)), (400, "invalid_request"));
        // Wrong content type.
        let res = app.client.put(app.url("/api/v1/cases/000.00.12.H62-240715-0001")).bearer_auth(&token)
            .header("content-type", "text/plain").body("hello").send().await.unwrap();
        let (status, v) = json(res).await;
        assert_eq!((status, error_code(&v)), (415, "unsupported_media_type"));
        // A body over FEERECON_MAX_BODY (1 MiB by default).
        let big = format!("{{\"applicant_name\": \"{}\"}}", "x".repeat(2 << 20));
        let res = app.client.put(app.url("/api/v1/cases/000.00.12.H62-240715-0001")).bearer_auth(&token)
            .header("content-type", "application/json").body(big).send().await.unwrap();
        let (status, v) = json(res).await;
        assert_eq!((status, error_code(&v)), (413, "payload_too_large"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_with_503() {
    use sqlx::Connection as _;
    // A 1-second timeout, and the SQLite database held by another connection's exclusive lock:
    // the write waits on the lock past the timeout.
    let app = crate::helpers::spawn_app_with(crate::helpers::Db::Sqlite, &[("FEERECON_REQUEST_TIMEOUT", "1s")])
        .await
        .unwrap();
    let token = app.token_for(Role::Portal).await;
    let mut blocker = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut blocker).await.unwrap();
    let code = "000.00.12.H62-240715-0001";
    let res = app.put_json(&format!("/api/v1/cases/{code}"), &token, &crate::helpers::case_body(code)).await;
    let (status, v) = json(res).await;
    assert_eq!((status, error_code(&v)), (503, "timeout"));
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    // Nothing was written by the abandoned request.
    let c = feerecon::domain::CaseCode::parse(code).unwrap();
    assert!(app.store.get_case(&c).await.unwrap().is_none());
}
