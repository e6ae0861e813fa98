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

/// The rows of an `entries.csv`.
fn rows(csv: &[u8]) -> Vec<feerecon::store::LedgerEntry> {
    csv::Reader::from_reader(csv)
        .records()
        .map(|r| {
            let r = r.unwrap();
            feerecon::store::LedgerEntry {
                seq: r[0].parse().unwrap(),
                business_date: chrono::NaiveDate::parse_from_str(&r[1], "%Y-%m-%d").unwrap(),
                posting_id: r[2].into(),
                kind: r[3].into(),
                line_no: r[4].parse().unwrap(),
                account: r[5].into(),
                debit: r[6].parse().unwrap(),
                credit: r[7].parse().unwrap(),
                memo: r[8].into(),
                refs: r[9].into(),
                prev_hash: r[10].into(),
                hash: r[11].into(),
            }
        })
        .collect()
}

/// What a forger holding the files but not the key can do: renumber the rows from `first_seq`,
/// rehash them from `anchor`, recompute every total and `entries_sha256`, and keep the
/// checkpoints it likes. Returns (entries.csv, manifest.json).
fn forge(
    m: &feerecon::ledger::export::Manifest,
    mut entries: Vec<feerecon::store::LedgerEntry>,
    first_seq: i64,
    anchor: &str,
    checkpoints: Vec<feerecon::ledger::export::ManifestCheckpoint>,
) -> (Vec<u8>, Vec<u8>) {
    use feerecon::ledger::export;
    let mut prev = anchor.to_owned();
    for (i, e) in entries.iter_mut().enumerate() {
        e.seq = first_seq + i as i64;
        let c = e.fields().canonical();
        e.prev_hash = prev.clone();
        e.hash = feerecon::domain::chain::link(&prev, &c).unwrap();
        prev = e.hash.clone();
    }
    let csv = export::entries_csv(&entries);
    let mut f = export::manifest(&m.from_date, &m.to_date, &entries, &csv, &[], &m.public_key);
    f.anchor_hash = anchor.to_owned();
    f.checkpoints = checkpoints;
    (csv, export::manifest_bytes(&f))
}

both_backends! {
    /// SPEC §8, issue 13 item 4: an export is signed at both ends. A range that does not end on
    /// a stored checkpoint carries an export checkpoint over its last entry (deterministic, never
    /// stored); verify requires the first entry to link to a signed checkpoint or the genesis
    /// hash and the last to be covered, so a forger without the key who drops the last
    /// checkpoint and cuts, edits or forges the rows after it (recomputing every hash, total and
    /// entries_sha256) is caught, with or without a pinned key, at the first row no signature
    /// covers.
    async fn an_export_is_signed_at_both_ends_and_an_unsigned_tail_or_head_fails(app: TestApp) {
        use feerecon::ledger::export::{Manifest, ManifestCheckpoint};
        let portal = app.token_for(Role::Portal).await;
        let auditor = app.token_for(Role::Auditor).await;
        waivers(&app, &portal, 1, 4).await; // seq 1..4, then day 1's end-of-day checkpoint
        let day1 = feerecon::domain::BusinessDate::of(app.clock.now());
        app.clock.advance(chrono::TimeDelta::days(1));
        assert_eq!(app.ledger.end_of_days().await.unwrap(), 1);
        waivers(&app, &portal, 5, 3).await; // seq 5..7, then day 2's
        app.clock.advance(chrono::TimeDelta::days(1));
        assert_eq!(app.ledger.end_of_days().await.unwrap(), 1);
        waivers(&app, &portal, 8, 2).await; // seq 8..9: day 3, not yet checkpointed
        let (day2, day3) = (day1.succ(), day1.succ().succ());
        let (_, key) = json(app.get("/api/v1/ledger/public-key", &auditor).await).await;
        let key = key["public_key"].as_str().unwrap().to_owned();
        let stored = app.store.checkpoints().await.unwrap().len();
        assert_eq!(stored, 2);

        // The tail is signed by an export checkpoint over seq 9.
        let all = app.ledger.export(day1.naive(), day3.naive()).await.unwrap().unwrap();
        let m = &all.manifest;
        assert_eq!((m.first_seq, m.last_seq, m.checkpoints.len()), (1, 9, 3));
        let tail = m.checkpoints.last().unwrap();
        assert_eq!(
            (tail.kind.as_str(), tail.business_date.clone(), tail.gateway.as_str(), tail.last_seq, tail.head_hash.as_str()),
            ("export", day3.to_string(), "*", 9, m.head_hash.as_str())
        );
        assert_eq!(tail.public_key, key);
        let ok = verify(&all.entries_csv, &all.manifest_json, Some(&key)).unwrap();
        assert_eq!((ok.last_seq, ok.checkpoints), (9, 3));
        // Deterministic: its time is the last entry's, so a later export of the range is the
        // same bytes; and it is never stored.
        app.clock.advance(chrono::TimeDelta::hours(5));
        let again = app.ledger.export(day1.naive(), day3.naive()).await.unwrap().unwrap();
        assert_eq!((again.entries_csv == all.entries_csv, again.manifest_json == all.manifest_json), (true, true));
        assert_eq!(app.store.checkpoints().await.unwrap().len(), stored, "an export checkpoint is never stored");
        let (_, cps) = json(app.get("/api/v1/ledger/checkpoints", &auditor).await).await;
        assert!(cps["items"].as_array().unwrap().iter().all(|c| c["kind"] != "export"), "{cps}");
        // It is never used to widen a range: day 3 alone still starts after day 2's checkpoint.
        let d3 = app.ledger.export(day3.naive(), day3.naive()).await.unwrap().unwrap();
        assert_eq!((d3.manifest.first_seq, d3.manifest.last_seq), (8, 9));
        verify(&d3.entries_csv, &d3.manifest_json, Some(&key)).unwrap();
        // A range that ends on a stored checkpoint needs none.
        let d2 = app.ledger.export(day2.naive(), day2.naive()).await.unwrap().unwrap();
        assert_eq!((d2.manifest.first_seq, d2.manifest.last_seq), (5, 7));
        assert!(d2.manifest.checkpoints.iter().all(|c| c.kind != "export"));
        verify(&d2.entries_csv, &d2.manifest_json, Some(&key)).unwrap();

        let both = |csv: &[u8], manifest: &[u8]| {
            let plain = verify(csv, manifest, None).unwrap_err();
            let pinned = verify(csv, manifest, Some(&key)).unwrap_err();
            assert_eq!(plain, pinned);
            plain
        };
        let stored_cps: Vec<ManifestCheckpoint> = m.checkpoints[..2].to_vec();
        let entries = rows(&all.entries_csv);
        // The forger's toolkit works: the untouched rows, re-forged with every checkpoint, verify.
        let (csv, man) = forge(m, entries.clone(), 1, &m.anchor_hash, m.checkpoints.clone());
        assert_eq!((csv == all.entries_csv, verify(&csv, &man, Some(&key)).is_ok()), (true, true));

        // 1. The last checkpoint dropped, nothing else: the tail after seq 7 is unsigned.
        let (csv, man) = forge(m, entries.clone(), 1, &m.anchor_hash, stored_cps.clone());
        let f = both(&csv, &man);
        assert_eq!(f.seq, 8, "{f}");
        assert!(f.reason.contains("no signed checkpoint covers"), "{f}");
        // 2. ...and a row after it edited, everything recomputed.
        let mut edited = entries.clone();
        edited[7].account = "suspense".into();
        let (csv, man) = forge(m, edited, 1, &m.anchor_hash, stored_cps.clone());
        assert_eq!(both(&csv, &man).seq, 8);
        // 3. ...or the last row cut.
        let (csv, man) = forge(m, entries[..8].to_vec(), 1, &m.anchor_hash, stored_cps.clone());
        assert_eq!(both(&csv, &man).seq, 8);
        // 4. ...or the rows after it replaced by a forged, balanced posting of real money.
        let mut forged = entries[..7].to_vec();
        for (line_no, account, debit, credit) in [(1, "suspense", 1_000_000, 0), (2, "revenue:le_phi", 0, 1_000_000)] {
            forged.push(feerecon::store::LedgerEntry {
                posting_id: "pst_forged".into(),
                kind: "waiver".into(),
                line_no,
                account: account.into(),
                debit,
                credit,
                memo: "forged".into(),
                ..entries[7].clone()
            });
        }
        let (csv, man) = forge(m, forged.clone(), 1, &m.anchor_hash, stored_cps.clone());
        assert_eq!(both(&csv, &man).seq, 8);
        // 5. Keeping the export checkpoint does not help: it no longer matches the chain.
        let (csv, man) = forge(m, forged, 1, &m.anchor_hash, m.checkpoints.clone());
        assert_eq!(both(&csv, &man).seq, 9);
        // 6. Every checkpoint dropped: nothing after the genesis hash is signed.
        let (csv, man) = forge(m, entries.clone(), 1, &m.anchor_hash, vec![]);
        assert_eq!(both(&csv, &man).seq, 1);
        // 7. The export checkpoint moved to another range end (`to` edited in the manifest).
        let mut moved: Manifest = serde_json::from_slice(&all.manifest_json).unwrap();
        moved.to_date = day2.to_string();
        let f = both(&all.entries_csv, &feerecon::ledger::export::manifest_bytes(&moved));
        assert_eq!(f.seq, 9, "{f}");

        // The head: the first entry must link to a signed checkpoint (or be seq 1 on the
        // genesis hash). Day 3's export, its anchoring checkpoint dropped:
        let m3 = &d3.manifest;
        assert_eq!(m3.checkpoints.first().map(|c| c.last_seq), Some(7));
        let e3 = rows(&d3.entries_csv);
        let (csv, man) = forge(m3, e3.clone(), 8, &m3.anchor_hash, m3.checkpoints[1..].to_vec());
        let f = both(&csv, &man);
        assert_eq!(f.seq, 8, "{f}");
        assert!(f.reason.contains("first entry"), "{f}");
        // ...or re-anchored on the genesis hash without being seq 1.
        let genesis = feerecon::domain::chain::GENESIS;
        let (csv, man) = forge(m3, e3.clone(), 8, genesis, vec![]);
        assert_eq!(both(&csv, &man).seq, 8);
        // ...or renumbered from 1 on the genesis hash: then the tail is not covered.
        let (csv, man) = forge(m3, e3, 1, genesis, vec![]);
        assert_eq!(both(&csv, &man).seq, 1);
        // Day 2's export ends on a stored checkpoint: dropped, its rows are unsigned from seq 5.
        let m2 = &d2.manifest;
        let (csv, man) = forge(m2, rows(&d2.entries_csv), 5, &m2.anchor_hash, m2.checkpoints[..1].to_vec());
        assert_eq!(both(&csv, &man).seq, 5);

        // Through the command line: `ledger export` signs with FEERECON_LEDGER_KEY, the same
        // bytes as the API's; `ledger verify --public-key` refuses the forged tail.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let args = |out: &std::path::Path| -> Vec<String> {
            ["ledger", "export", "--from", &day1.to_string(), "--to", &day3.to_string(), "--out", out.to_str().unwrap()]
                .map(str::to_owned)
                .to_vec()
        };
        let a = args(&out);
        let r = crate::cli::feerecon(&app.database_url, &a.iter().map(String::as_str).collect::<Vec<_>>(), "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), all.manifest_json, "deterministic across CLI and API");
        assert_eq!(std::fs::read(out.join("entries.csv")).unwrap(), all.entries_csv);
        let keyfile = dir.path().join("key.hex");
        std::fs::write(&keyfile, &key).unwrap();
        let verify_cli = |out: std::path::PathBuf, keyfile: std::path::PathBuf| async move {
            crate::cli::feerecon("sqlite::memory:", &["ledger", "verify", out.to_str().unwrap(), "--public-key", keyfile.to_str().unwrap()], "", &[]).await
        };
        let r = verify_cli(out.clone(), keyfile.clone()).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let (csv, man) = forge(m, entries[..8].to_vec(), 1, &m.anchor_hash, stored_cps);
        std::fs::write(out.join("entries.csv"), csv).unwrap();
        std::fs::write(out.join("manifest.json"), man).unwrap();
        let r = verify_cli(out.clone(), keyfile).await;
        assert_eq!(r.code, 1, "{}", r.stdout);
        assert!(r.stderr.contains("seq 8:"), "{}", r.stderr);

        // `ledger export` refuses a key other than the one the ledger recorded, and a missing
        // key file (it never creates one).
        let other = dir.path().join("other.key");
        feerecon::ledger::LedgerKey::load_or_create(&other).unwrap();
        let a = args(&dir.path().join("x"));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = crate::cli::feerecon(&app.database_url, &a, "", &[("FEERECON_LEDGER_KEY", other.to_str().unwrap())]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("FEERECON_LEDGER_KEY") && r.stderr.contains(&key), "{}", r.stderr);
        assert!(!dir.path().join("x").exists(), "nothing written");
        let missing = dir.path().join("missing.key");
        let r = crate::cli::feerecon(&app.database_url, &a, "", &[("FEERECON_LEDGER_KEY", missing.to_str().unwrap())]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("FEERECON_LEDGER_KEY"), "{}", r.stderr);
        assert!(!missing.exists(), "export never creates a key");
    }
}
