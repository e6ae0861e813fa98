//! Case imports say what they did to each case, and a change to a filed case is audited with who
//! made it (issue 20): `PUT /api/v1/cases/{code}` answers `result` created, unchanged or
//! updated; `import cases` prints each updated case; both write `case.update` to the audit log.
//! CLI imports and runs name the operator (`--operator`, else the login name), never "cli".

use feerecon::domain::Role;

use crate::cli::feerecon;
use crate::helpers::{case_body, json};

crate::both_backends! {
    async fn a_put_that_changes_a_case_says_updated_and_is_audited(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let code = "000.00.12.H62-240715-0001";
        let path = format!("/api/v1/cases/{code}");
        let body = case_body(code);
        let (s, v) = json(app.put_json(&path, &portal, &body).await).await;
        assert_eq!((s, v["result"].as_str()), (201, Some("created")), "{v}");
        let (s, v) = json(app.put_json(&path, &portal, &body).await).await;
        assert_eq!((s, v["result"].as_str(), v["version"].as_i64()), (200, Some("unchanged"), Some(1)), "{v}");
        assert!(app.store.audit_log(0, 100).await.unwrap().iter().all(|e| e.action != "case.update"));
        let mut changed = body.clone();
        changed["applicant_name"] = "Trần Thị Bình".into();
        let (s, v) = json(app.put_json(&path, &portal, &changed).await).await;
        assert_eq!((s, v["result"].as_str(), v["version"].as_i64()), (200, Some("updated"), Some(2)), "{v}");
        let log = app.store.audit_log(0, 100).await.unwrap();
        let updates: Vec<_> = log.iter().filter(|e| e.action == "case.update").collect();
        assert_eq!(updates.len(), 1, "{log:?}");
        assert_eq!(updates[0].subject, code);
        assert!(updates[0].actor.starts_with("portal-"), "the portal user's name: {}", updates[0].actor);
        assert_eq!(updates[0].details["version"], 2);
    }
}

const CSV_HEAD: &str = "case_code,procedure_code,applicant_name,channel,subjects,quantity,received_at,receiving_unit\n";

fn row(seq: u32, name: &str) -> String {
    format!(
        "000.00.12.H62-240716-{seq:04},1.001193,\"{name}\",online_full,,1,2024-07-16T08:00:00+07:00,000.00.12.H62\n"
    )
}

crate::both_databases! {
    async fn cli_imports_print_updated_cases_and_audit_the_operator(url: String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cases.csv");
        std::fs::write(&file, format!("{CSV_HEAD}{}{}", row(1, "An"), row(2, "Bình"))).unwrap();
        let file = file.display().to_string();
        // No --operator: the login name from $USER.
        let r = feerecon(&url, &["import", "cases", &file], "", &[("USER", "lan.ops")]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("2 created") && !r.stdout.contains("updated 0"), "{}", r.stdout);
        std::fs::write(&file, format!("{CSV_HEAD}{}{}", row(1, "An"), row(2, "Bình Minh"))).unwrap();
        let r = feerecon(&url, &["import", "cases", &file, "--operator", "hoa.finance"], "", &[("USER", "lan.ops")]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("updated 000.00.12.H62-240716-0002 (now version 2)"), "{}", r.stdout);
        assert!(!r.stdout.contains("updated 000.00.12.H62-240716-0001"), "{}", r.stdout);
        assert!(r.stdout.contains("1 updated, 1 unchanged"), "{}", r.stdout);
        let r = feerecon(&url, &["reconcile", "--date", "2024-07-16", "--gateway", "vnpay", "--operator", "hoa.finance"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);

        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let log = store.audit_log(0, 100).await.unwrap();
        let seen: Vec<(&str, &str, &str)> = log.iter().map(|e| (e.action.as_str(), e.actor.as_str(), e.subject.as_str())).collect();
        assert!(seen.iter().all(|(_, actor, _)| *actor != "cli"), "{seen:?}");
        assert_eq!(seen.iter().filter(|(a, _, _)| *a == "cases.import").map(|(_, who, _)| *who).collect::<Vec<_>>(), ["lan.ops", "hoa.finance"]);
        assert_eq!(
            seen.iter().filter(|(a, _, _)| *a == "case.update").copied().collect::<Vec<_>>(),
            [("case.update", "hoa.finance", "000.00.12.H62-240716-0002")]
        );
        assert!(seen.iter().any(|(a, who, _)| *a == "reconciliation.run" && *who == "hoa.finance"), "{seen:?}");
        let import = log.iter().rfind(|e| e.action == "cases.import").unwrap();
        assert_eq!((import.details["updated"].as_i64(), import.details["unchanged"].as_i64()), (Some(1), Some(1)));
        store.close().await;
    }
}

crate::both_databases! {
    async fn cli_user_and_token_actions_audit_the_operator(url: String) {
        let r = feerecon(&url, &["user", "add", "--name", "lan.ops", "--role", "finance", "--operator", "hoa.admin"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = feerecon(&url, &["token", "create", "--user", "lan.ops", "--operator", "hoa.admin"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let id = r.stdout.lines().find_map(|l| l.strip_prefix("token id: ")).unwrap().trim().to_owned();
        // No --operator: the login name from $USER.
        let r = feerecon(&url, &["token", "revoke", &id], "", &[("USER", "minh.ops")]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        // A blank --operator is refused, and changes nothing.
        let r = feerecon(&url, &["user", "add", "--name", "binh", "--role", "auditor", "--operator", " "], "", &[("USER", "minh.ops")]).await;
        assert_ne!(r.code, 0, "{}", r.stdout);
        assert!(r.stderr.contains("--operator is blank"), "{}", r.stderr);

        let store = feerecon::store::Store::connect(&url).await.unwrap();
        assert!(store.user_by_name("binh").await.unwrap().is_none());
        let log = store.audit_log(0, 100).await.unwrap();
        let seen: Vec<(&str, &str)> = log.iter().map(|e| (e.action.as_str(), e.actor.as_str())).collect();
        assert_eq!(seen, [("user.add", "hoa.admin"), ("token.create", "hoa.admin"), ("token.revoke", "minh.ops")]);
        store.close().await;
    }
}
