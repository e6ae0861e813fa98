//! The ledger on both databases: what the database refuses, one chain under concurrency, signed
//! checkpoints, the auditor's export and its offline verification against every tampering.

use std::sync::Arc;

use feerecon::domain::{Clock as _, Role};
use feerecon::ledger::verify::verify;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Db, TestApp, json, spawn_app_on};

/// Waived payments (marriage in Vietnam): each one appends a posting.
async fn waivers(app: &TestApp, token: &str, first: u32, n: u32) {
    for seq in first..first + n {
        let code = app.new_case(token, seq, "1.000894", "counter", "2024-07-15").await;
        let (s, v) = app.create_payment(token, &code, "vnpay", "k").await;
        assert_eq!(s, 201, "{v}");
    }
}

/// Runs one statement on the test database directly, as an intruder with SQL access would.
async fn sql(app: &TestApp, q: &str) -> Result<u64, String> {
    use sqlx::Connection as _;
    match app.db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::query(q).execute(&mut c).await.map(|r| r.rows_affected()).map_err(|e| e.to_string())
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            let r = sqlx::query(q).execute(&mut *tx).await.map(|r| r.rows_affected()).map_err(|e| e.to_string());
            match r {
                Ok(n) => tx.commit().await.map(|_| n).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            }
        }
    }
}

both_backends! {
    async fn the_database_refuses_unbalanced_postings_and_any_change(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        waivers(&app, &portal, 1, 1).await;
        let date = if app.db == Db::Sqlite { "'2024-07-15'" } else { "DATE '2024-07-15'" };
        let ts = if app.db == Db::Sqlite { "'2024-07-15T00:00:00+00:00'" } else { "TIMESTAMPTZ '2024-07-15T00:00:00Z'" };
        // Unbalanced: 100 debit, 90 credit.
        let entries = |posting: &str, seq: i64, dr: i64, cr: i64| format!(
            "INSERT INTO ledger_entries (seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs, prev_hash, hash) VALUES
             ({seq}, '{posting}', 1, {date}, 'test', 'suspense', {dr}, 0, '', '', 'x', 'h{seq}a'), ({}, '{posting}', 2, {date}, 'test', 'write_offs', 0, {cr}, '', '', 'x', 'h{seq}b')", seq + 1);
        let complete = |posting: &str, total: i64| format!(
            "INSERT INTO ledger_postings (posting_id, idem_key, kind, business_date, created_at, corrects, line_count, total) VALUES ('{posting}', '{posting}', 'test', {date}, {ts}, NULL, 2, {total})");
        if app.db == Db::Sqlite {
            // The entries and their completion in one transaction, as the store writes them:
            // the completion is refused and the transaction rolls back.
            use sqlx::Connection as _;
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            sqlx::query(&entries("pst_bad", 1000, 100, 90)).execute(&mut *tx).await.unwrap();
            let e = sqlx::query(&complete("pst_bad", 100)).execute(&mut *tx).await.unwrap_err().to_string();
            assert!(e.contains("unbalanced or incomplete posting"), "{e}");
            tx.rollback().await.unwrap();
            let e = sql(&app, &complete("pst_none", 0)).await.unwrap_err();
            assert!(e.contains("unbalanced or incomplete posting"), "{e}");
            // A completed posting takes no more entries.
            let first = app.store.ledger_entries(0, 1).await.unwrap().remove(0);
            let e = sql(&app, &entries(&first.posting_id, 2000, 0, 0)).await.unwrap_err();
            assert!(e.contains("corrections are new postings"), "{e}");
        } else {
            // Entries alone cannot be committed: the deferred check wants their completion.
            let e = sql(&app, &entries("pst_bad", 1000, 100, 100)).await.unwrap_err();
            assert!(e.contains("without completing it"), "{e}");
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            sqlx::query(&entries("pst_bad", 1000, 100, 90)).execute(&mut *tx).await.unwrap();
            let e = sqlx::query(&complete("pst_bad", 100)).execute(&mut *tx).await.unwrap_err().to_string();
            assert!(e.contains("unbalanced or incomplete posting"), "{e}");
        }
        for q in [
            "UPDATE ledger_entries SET debit = debit + 1 WHERE seq = 1",
            "DELETE FROM ledger_entries WHERE seq = 1",
            "UPDATE ledger_postings SET total = 0",
            "DELETE FROM ledger_postings",
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
        ] {
            let e = sql(&app, q).await.unwrap_err();
            assert!(e.contains("append-only"), "{q}: {e}");
        }
        if app.db == Db::Postgres {
            let e = sql(&app, "TRUNCATE ledger_entries CASCADE").await.unwrap_err();
            assert!(e.contains("append-only"), "{e}");
        }
        let check = app.ledger.verify_live().await.unwrap();
        assert!(check.ok, "{check:?}");
    }
}

both_backends! {
    async fn concurrent_appends_keep_one_chain(app: TestApp) {
        // A second instance on the same database appends at the same time.
        let other = if app.db == Db::Postgres {
            Some(spawn_app_on(Db::Postgres, app.database_url.clone(), None, &[], app.clock.clone()).await)
        } else {
            None
        };
        let portal = app.token_for(Role::Portal).await;
        let mut handles = Vec::new();
        for w in 0..6u32 {
            let target = match (&other, w % 2) {
                (Some(o), 1) => (o.client.clone(), o.address.clone()),
                _ => (app.client.clone(), app.address.clone()),
            };
            let token = portal.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..6u32 {
                    let seq = w * 10 + i + 1;
                    let code = format!("000.00.12.H62-240715-{seq:04}");
                    let body = json!({"procedure_code": "1.000894", "applicant_name": "A", "channel": "counter",
                        "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
                    target.0.put(format!("{}/api/v1/cases/{code}", target.1)).bearer_auth(&token).json(&body).send().await.unwrap();
                    let res = target.0.post(format!("{}/api/v1/cases/{code}/payments", target.1)).bearer_auth(&token)
                        .header("Idempotency-Key", "k").json(&json!({"gateway": "momo", "return_url": "https://x.vn/", "client_ip": "1.2.3.4"}))
                        .send().await.unwrap();
                    assert_eq!(res.status(), 201);
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let entries = app.store.ledger_entries(0, 10_000).await.unwrap();
        assert_eq!(entries.len(), 36);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as i64 + 1, "gap-free");
        }
        let check = app.ledger.verify_live().await.unwrap();
        assert!(check.ok && check.entries == 36, "{check:?}");
    }
}

both_backends! {
    async fn an_export_verifies_offline_and_every_tampering_names_its_seq(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let auditor = app.token_for(Role::Auditor).await;
        waivers(&app, &portal, 1, 4).await;
        let day1 = feerecon::domain::BusinessDate::of(app.clock.now());
        // Each day ends with its end-of-day checkpoint, written after midnight.
        app.clock.advance(chrono::TimeDelta::days(1));
        assert_eq!(app.ledger.end_of_days().await.unwrap(), 1);
        waivers(&app, &portal, 5, 3).await;
        app.clock.advance(chrono::TimeDelta::days(1));
        assert_eq!(app.ledger.end_of_days().await.unwrap(), 1);
        assert_eq!(app.ledger.end_of_days().await.unwrap(), 0, "one per date");
        waivers(&app, &portal, 8, 2).await;
        let day2 = day1.succ();
        let (s, key) = json(app.get("/api/v1/ledger/public-key", &auditor).await).await;
        assert_eq!(s, 200);
        let key = key["public_key"].as_str().unwrap().to_owned();

        // The export of day 2 alone: bracketed by day 1's and day 2's end-of-day checkpoints.
        let e = app.ledger.export(day2.naive(), day2.naive()).await.unwrap().unwrap();
        assert_eq!((e.manifest.first_seq, e.manifest.last_seq, e.manifest.checkpoints.len()), (5, 7, 2));
        let ok = verify(&e.entries_csv, &e.manifest_json, Some(&key)).unwrap();
        assert_eq!(ok.entries, 3);
        // Byte-exact: the same range exports the same bytes.
        let again = app.ledger.export(day2.naive(), day2.naive()).await.unwrap().unwrap();
        assert_eq!(again.entries_csv, e.entries_csv);

        // Every date: from the start of the chain to the head.
        let all = app.ledger.export(day1.naive(), day2.succ().naive()).await.unwrap().unwrap();
        assert_eq!((all.manifest.first_seq, all.manifest.last_seq), (1, 9));
        verify(&all.entries_csv, &all.manifest_json, Some(&key)).unwrap();
        let text = String::from_utf8(all.entries_csv.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let manifest = all.manifest_json.clone();
        let tampered = |rows: Vec<String>| format!("{}\n", rows.join("\n")).into_bytes();
        for n in 1..lines.len() {
            let seq = n as i64;
            // Flip one character of the row (not the hash columns).
            let mut rows: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            rows[n] = rows[n].replacen(",suspense,", ",write_offs,", 1).replacen(",revenue:le_phi,", ",revenue:phi,", 1);
            if rows[n] != lines[n] {
                let f = verify(&tampered(rows), &manifest, None).unwrap_err();
                assert_eq!(f.seq, seq, "flip: {f}");
            }
            // Change its hash, or its prev_hash.
            let mut rows: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            let cut = rows[n].rfind(',').unwrap();
            let h = &rows[n][cut + 1..];
            let other = format!("{}{}", if h.starts_with('0') { '1' } else { '0' }, &h[1..]);
            rows[n] = format!("{}{}", &rows[n][..=cut], other);
            assert_eq!(verify(&tampered(rows), &manifest, None).unwrap_err().seq, seq, "hash");
            // Delete it.
            let mut rows: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            rows.remove(n);
            assert_eq!(verify(&tampered(rows), &manifest, None).unwrap_err().seq, seq, "delete");
            // Insert a copy of it.
            let mut rows: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            rows.insert(n, lines[n].to_owned());
            assert_eq!(verify(&tampered(rows), &manifest, None).unwrap_err().seq, seq + 1, "insert");
            // Swap it with the next one.
            if n + 1 < lines.len() {
                let mut rows: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
                rows.swap(n, n + 1);
                assert_eq!(verify(&tampered(rows), &manifest, None).unwrap_err().seq, seq, "reorder");
            }
        }

        // Through the command line, with the key pinned.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let r = crate::cli::feerecon(&app.database_url, &["ledger", "export", "--from", &day1.to_string(), "--to", &day2.to_string(), "--out", out.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let keyfile = dir.path().join("key.json");
        std::fs::write(&keyfile, format!("{{\"algorithm\": \"ed25519\", \"public_key\": \"{key}\"}}")).unwrap();
        let r = crate::cli::feerecon("sqlite::memory:", &["ledger", "verify", out.to_str().unwrap(), "--public-key", keyfile.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.starts_with("ok:"), "{}", r.stdout);
        let csv = std::fs::read_to_string(out.join("entries.csv")).unwrap();
        std::fs::write(out.join("entries.csv"), csv.replacen(",0,0,", ",0,1,", 1)).unwrap();
        let r = crate::cli::feerecon("sqlite::memory:", &["ledger", "verify", out.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("seq 1:"), "{}", r.stderr);

        // A manifest re-signed with another key verifies with its own key, not the pinned one.
        let mut m: feerecon::ledger::export::Manifest = serde_json::from_slice(&all.manifest_json).unwrap();
        let forger = feerecon::ledger::LedgerKey::load_or_create(&dir.path().join("forger.key")).unwrap();
        for c in &mut m.checkpoints {
            let date = chrono::NaiveDate::parse_from_str(&c.business_date, "%Y-%m-%d").unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(&c.created_at).unwrap().with_timezone(&chrono::Utc);
            let msg = feerecon::domain::ledger::checkpoint_message(&c.kind, date, &c.gateway, c.last_seq, &c.head_hash, &c.totals, &at);
            c.signature = forger.sign_hex(&msg);
            c.public_key = forger.public_hex();
        }
        m.public_key = forger.public_hex();
        let forged = feerecon::ledger::export::manifest_bytes(&m);
        assert!(verify(&all.entries_csv, &forged, None).is_ok(), "self-consistent");
        let f = verify(&all.entries_csv, &forged, Some(&key)).unwrap_err();
        assert!(f.reason.contains("pinned"), "{f}");
        // A checkpoint whose signature does not match its content names its seq.
        let mut m2: feerecon::ledger::export::Manifest = serde_json::from_slice(&all.manifest_json).unwrap();
        m2.checkpoints[0].totals.insert("suspense".into(), (1, 0));
        let f = verify(&all.entries_csv, &feerecon::ledger::export::manifest_bytes(&m2), None).unwrap_err();
        assert_eq!(f.seq, m2.checkpoints[0].last_seq, "{f}");

        // The API's export is a zip of the same files; the live chain verifies; balances balance.
        let zip = app.get(&format!("/api/v1/ledger/export?from={day1}&to={day2}"), &auditor).await.bytes().await.unwrap();
        assert_eq!(&zip[..2], b"PK");
        let (_, live) = json(app.get("/api/v1/ledger/verify", &auditor).await).await;
        assert_eq!((live["ok"].as_bool(), live["entries"].as_i64(), live["checkpoints"].as_i64()), (Some(true), Some(9), Some(2)));
        let (_, bal) = json(app.get(&format!("/api/v1/ledger/balances?date={day1}"), &auditor).await).await;
        assert_eq!(bal["total_debit"], bal["total_credit"]);
        let (s, _) = json(app.get("/api/v1/ledger/verify", &portal).await).await;
        assert_eq!(s, 403);
        let (_, audit) = json(app.get("/api/v1/audit-log", &auditor).await).await;
        assert!(audit["items"].as_array().unwrap().iter().any(|e| e["action"] == "policy.load"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_key_other_than_the_database_s() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let key = dir.path().join("first.key");
    let clock = Arc::new(feerecon::domain::ShiftedClock::starting_at(chrono::Utc::now()));
    let app =
        spawn_app_on(Db::Sqlite, url.clone(), None, &[("FEERECON_LEDGER_KEY", key.to_str().unwrap())], clock).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    app.stop().await;
    let other = dir.path().join("second.key");
    let r = crate::cli::feerecon(
        &url,
        &["serve"],
        "",
        &[("FEERECON_LEDGER_KEY", other.to_str().unwrap()), ("FEERECON_LISTEN", "127.0.0.1:0")],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("FEERECON_LEDGER_KEY"), "{}", r.stderr);
}
