//! Cases over HTTP (SPEC §4.3): create, update, versions, and every check on the way in.

use feerecon::domain::{CaseCode, Role};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{case_body, error_code, json};

const CODE: &str = "000.00.12.H62-240715-0001";

both_backends! {
    async fn a_case_is_created_then_updated_with_every_version_kept(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let path = format!("/api/v1/cases/{CODE}");
        let body = case_body(CODE);

        let (status, v) = json(app.put_json(&path, &portal, &body).await).await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["case_code"], CODE);
        assert_eq!(v["received_at"], "2024-07-15T09:30:00+07:00");
        assert_eq!(v["subjects"], json!(["poor_household"]));
        assert_eq!(v["version"], 1);

        // The same content again: 200, no new version.
        let (status, v) = json(app.put_json(&path, &portal, &body).await).await;
        assert_eq!((status, v["version"].as_i64()), (200, Some(1)));

        // The same instant written in UTC is the same content.
        let mut utc = body.clone();
        utc["received_at"] = json!("2024-07-15T02:30:00Z");
        let (status, v) = json(app.put_json(&path, &portal, &utc).await).await;
        assert_eq!((status, v["version"].as_i64()), (200, Some(1)));

        // A change: 200 and version 2.
        let mut changed = body.clone();
        changed["channel"] = json!("counter");
        let (status, v) = json(app.put_json(&path, &portal, &changed).await).await;
        assert_eq!((status, v["version"].as_i64(), v["channel"].as_str()), (200, Some(2), Some("counter")));

        // Any role reads the current version.
        let auditor = app.token_for(Role::Auditor).await;
        let (status, v) = json(app.get(&path, &auditor).await).await;
        assert_eq!((status, v["channel"].as_str(), v["version"].as_i64()), (200, Some("counter"), Some(2)));

        let versions = app.store.case_versions(&CaseCode::parse(CODE).unwrap()).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].case.channel.as_str(), "online_full");
        assert_eq!(versions[1].case.channel.as_str(), "counter");
    }
}

both_backends! {
    async fn bad_cases_are_refused_with_the_field_and_change_nothing(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let path = format!("/api/v1/cases/{CODE}");
        let checks: Vec<(serde_json::Value, &str)> = vec![
            ({ let mut b = case_body(CODE); b["case_code"] = json!("000.00.12.H62-240715-0002"); b }, "case_code"),
            ({ let mut b = case_body(CODE); b["received_at"] = json!("2024-07-16T09:30:00+07:00"); b }, "received_at"),
            ({ let mut b = case_body(CODE); b["received_at"] = json!("2024-07-15T18:00:00Z"); b }, "received_at"),
            ({ let mut b = case_body(CODE); b["receiving_unit"] = json!("000.00.13.H62"); b }, "receiving_unit"),
            ({ let mut b = case_body(CODE); b["channel"] = json!("web"); b }, "channel"),
            ({ let mut b = case_body(CODE); b["subjects"] = json!(["vip"]); b }, "subjects"),
            ({ let mut b = case_body(CODE); b["quantity"] = json!(0); b }, "quantity"),
            ({ let mut b = case_body(CODE); b["quantity"] = json!("2"); b }, "quantity"),
            ({ let mut b = case_body(CODE); b["procedure_code"] = json!("1.1193"); b }, "procedure_code"),
            ({ let mut b = case_body(CODE); b["fee"] = json!(5); b }, "fee"),
            ({ let mut b = case_body(CODE); b.as_object_mut().unwrap().remove("channel"); b }, "channel"),
        ];
        for (body, field) in checks {
            let (status, v) = json(app.put_json(&path, &portal, &body).await).await;
            assert_eq!((status, error_code(&v)), (422, "invalid_field"), "{field}: {v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(field), "{field}: {msg}");
        }
        // A malformed code in the path.
        let (status, v) = json(app.put_json("/api/v1/cases/000.00.12.H62-241315-0001", &portal, &case_body(CODE)).await).await;
        assert_eq!((status, error_code(&v)), (422, "invalid_field"));
        assert!(app.store.get_case(&CaseCode::parse(CODE).unwrap()).await.unwrap().is_none());
        let (status, v) = json(app.get(&path, &portal).await).await;
        assert_eq!((status, error_code(&v)), (404, "not_found"));
    }
}

both_backends! {
    async fn concurrent_writes_of_one_new_case_create_it_once(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let path = format!("/api/v1/cases/{CODE}");
        let body = case_body(CODE);
        let mut handles = Vec::new();
        for _ in 0..12 {
            let (client, url, token, body) = (app.client.clone(), app.url(&path), portal.clone(), body.clone());
            handles.push(tokio::spawn(async move {
                client.put(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for h in handles {
            statuses.push(h.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 11, "{statuses:?}");
        assert_eq!(app.store.case_versions(&CaseCode::parse(CODE).unwrap()).await.unwrap().len(), 1);
    }
}
