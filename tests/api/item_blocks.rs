//! Matched items stored as blocks (issue 23, migration 0014), on SQLite and PostgreSQL: a run's
//! items read the same whether stored as rows (runs before the blocks) or as blocks, through
//! every reader: the item pages (every page size, each filter), one item by key, the exception
//! list's item columns and `in_latest_run` for a superseded exception whose item is now matched,
//! the report as JSON and CSV, and the day. The tests' blocks hold three items (`fresh_db`).
//! Also the first occurrence of a line, decided at import in Rust (the same change of issue 23).

use chrono::NaiveDate;
use feerecon::domain::payment::Gateway;
use feerecon::domain::recon::{Category, Item, ItemRecord, LineStatus};
use feerecon::store::{RunRecord, Store};
use serde_json::Value;

use crate::both_databases;
use crate::helpers::{Db, json};
use crate::world::{Paid, World, across};

fn items() -> Vec<Item<'static>> {
    let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    (0..20)
        .map(|n| {
            let line = n % 2 == 0;
            Item {
                key: format!("vnpay:k{n:02}"),
                category: if n % 4 == 3 { Category::MissingInSettlement } else { Category::Matched },
                business_date: date,
                case_code: Some(["HS-1", "HS-2:~"][n % 2]),
                payment_id: (!line).then_some(["pay_a", ""][n % 3 % 2]),
                txn_ref: Some("REF 1"),
                gateway_txn_no: line.then_some("14001"),
                line_status: line.then_some(LineStatus::Success),
                recorded_amount: Some(135_000 + n as i64),
                settled_amount: line.then_some(-5),
                expected_amount: (n % 5 != 0).then_some(135_000),
                counterpart_date: (n == 6).then(|| date.pred_opt().unwrap()),
                fee: line.then_some(1_485),
                settles_payment: n % 3 == 0,
            }
        })
        .collect()
}

async fn store_run(store: &Store, run_id: &str, items: &[Item<'_>], as_row: &(dyn Fn(&str) -> bool + Sync)) {
    let run = RunRecord {
        run_id: run_id.to_owned(),
        business_date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        gateway: Gateway::Vnpay,
        created_at: chrono::Utc::now(),
        created_by: "test".into(),
        report_hash: "h".into(),
        report: "{}".into(),
    };
    let mut tx = store.write().await.unwrap();
    tx.insert_run(&run, items.iter().cloned(), as_row).await.unwrap();
    tx.commit().await.unwrap();
}

/// Every page of a run's items with `limit`, concatenated.
async fn walk(
    store: &Store,
    run_id: &str,
    category: Option<Category>,
    exceptions: bool,
    limit: i64,
) -> Vec<ItemRecord> {
    let mut out: Vec<ItemRecord> = Vec::new();
    loop {
        let after = out.last().map(|i| i.item_key.clone());
        let page = store.run_items(run_id, category, exceptions, after.as_deref(), limit).await.unwrap();
        assert!(page.len() <= limit as usize);
        let done = page.len() < limit as usize;
        out.extend(page);
        assert!(out.len() <= 100, "the pages never end");
        if done {
            return out;
        }
    }
}

both_databases! {
    /// Run A as the rows of before the blocks, run B with its matched items in blocks of three
    /// but for one whose key is an exception's: both read back as the items stored.
    async fn rows_and_blocks_read_back_the_same(url: String) {
        let store = Store::connect(&url).await.unwrap();
        let items = items();
        store_run(&store, "run_rows", &items, &|_| true).await;
        store_run(&store, "run_blocks", &items, &|k| k == "vnpay:k05").await;
        let all: Vec<ItemRecord> = items.iter().map(ItemRecord::from).collect();
        let only = |f: &dyn Fn(&ItemRecord) -> bool| all.iter().filter(|i| f(i)).cloned().collect::<Vec<_>>();
        for run in ["run_rows", "run_blocks"] {
            for limit in [1, 2, 3, 4, 7, 19, 20, 1000] {
                assert_eq!(walk(&store, run, None, false, limit).await, all, "{run}, every item, pages of {limit}");
                assert_eq!(walk(&store, run, Some(Category::Matched), false, limit).await,
                           only(&|i| i.category == Category::Matched), "{run}, matched, pages of {limit}");
                assert_eq!(walk(&store, run, Some(Category::MissingInSettlement), false, limit).await,
                           only(&|i| i.category == Category::MissingInSettlement), "{run}, one exception category");
                assert_eq!(walk(&store, run, None, true, limit).await,
                           only(&|i| i.category != Category::Matched), "{run}, exceptions only");
            }
            // A cursor between keys, before the first and after the last.
            let page = store.run_items(run, None, false, Some("vnpay:k045"), 3).await.unwrap();
            assert_eq!(page, all[5..8].to_vec(), "{run}");
            assert_eq!(store.run_items(run, None, false, Some("a"), 2).await.unwrap(), all[..2].to_vec(), "{run}");
            assert!(store.run_items(run, None, false, Some("vnpay:z"), 5).await.unwrap().is_empty(), "{run}");
            for i in &all {
                assert_eq!(store.run_item(run, &i.item_key).await.unwrap().as_ref(), Some(i), "{run}");
            }
            for absent in ["vnpay:k045", "vnpay:k", "vnpay:k19x", "a", "vnpay:z"] {
                assert_eq!(store.run_item(run, absent).await.unwrap(), None, "{run}: {absent}");
            }
        }
        assert!(store.run_items("no_such_run", None, false, None, 10).await.unwrap().is_empty());
        assert_eq!(store.run_item("no_such_run", "vnpay:k00").await.unwrap(), None);
    }
}

fn line_key(p: &Paid) -> String {
    format!("vnpay:{}:success", p.no)
}

fn payment_key(p: &Paid) -> String {
    format!("vnpay:payment:{}", p.id)
}

/// Every page of the items route with `limit`.
async fn walk_api(w: &World, query: &str, limit: u32) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/api/v1/reconciliations/2024-07-15/items?gateway=vnpay&limit={limit}{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = json(w.app.get(&url, &w.auditor).await).await;
        assert_eq!(s, 200, "{url}: {v}");
        items.extend(v["items"].as_array().unwrap().iter().cloned());
        assert!(items.len() <= 200, "{url}: the pages never end");
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

across! {
    /// A day of seventeen payments, run twice. Between the runs a refunded line's lost callback
    /// arrives (its exception is superseded and its item matched, with the same key) and a
    /// written-off payment's line comes (its item is gone: the pair's item has the line's key).
    /// Every reader answers from blocks of three.
    async fn every_items_reader_answers_across_blocks(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let mut paid = Vec::new();
        for _ in 0..13 {
            paid.push(w.pay("2024-07-15", false).await);
        }
        let refunded = w.pay("2024-07-15", true).await;
        let lost = w.pay("2024-07-15", true).await;
        let written = w.pay("2024-07-15", false).await;
        let at = "2024-07-15T10:05:00+07:00";
        let lines: Vec<_> =
            paid.iter().chain([&refunded, &lost]).map(|p| (p, p.amount, LineStatus::Success, at)).collect();
        w.import(&lines).await;
        w.at("2024-07-15T20:00:00+07:00");
        w.run("2024-07-15").await;
        w.resolve(&line_key(&refunded), "refund").await;
        w.resolve(&payment_key(&written), "write_off").await;
        w.callback(&refunded).await;
        w.import(&[(&written, written.amount, LineStatus::Success, "2024-07-15T11:00:00+07:00")]).await;
        let report = w.run("2024-07-15").await;
        assert_eq!(w.exception(&line_key(&refunded)).await.state.as_str(), "superseded");
        assert_eq!(w.exception(&payment_key(&written)).await.state.as_str(), "superseded");

        // The item pages: every page size reads the one-page answer; keys strictly increase.
        let all = walk_api(&w, "", 1000).await;
        let keys: Vec<&str> = all.iter().map(|i| i["item_key"].as_str().unwrap()).collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]), "{keys:?}");
        let matched: Vec<&Value> = all.iter().filter(|i| i["category"] == "matched").collect();
        assert_eq!(matched.len(), paid.len() + 2, "{all:?}");
        for key in [line_key(&written), line_key(&refunded)] {
            assert!(matched.iter().any(|i| i["item_key"] == key), "{key}: {all:?}");
        }
        for limit in [1, 2, 3, 5] {
            assert_eq!(walk_api(&w, "", limit).await, all, "pages of {limit}");
        }
        assert_eq!(walk_api(&w, "&category=matched", 2).await.iter().collect::<Vec<_>>(), matched);
        let unconfirmed = walk_api(&w, "&category=unconfirmed_in_records", 2).await;
        assert_eq!(unconfirmed.len(), 1, "{unconfirmed:?}");
        assert_eq!(unconfirmed[0]["item_key"], line_key(&lost));

        // One item by key, as the exception detail and the store read it.
        let run_id = report["run_id"].as_str().unwrap();
        for i in &all {
            let key = i["item_key"].as_str().unwrap();
            let one = w.app.store.run_item(run_id, key).await.unwrap().unwrap_or_else(|| panic!("no {key}"));
            assert_eq!(serde_json::to_value(&one).unwrap(), *i);
        }

        // The exception list: the refunded line's superseded exception shows its item, now
        // matched, from the latest run; the written-off payment's has no item any more.
        let (s, list) = json(w.app.get("/api/v1/exceptions?gateway=vnpay&limit=100", &w.auditor).await).await;
        assert_eq!(s, 200, "{list}");
        let rows = list["items"].as_array().unwrap();
        let row = |key: String| rows.iter().find(|e| e["id"] == key).cloned().unwrap_or_else(|| panic!("{key}: {list}"));
        let e = row(line_key(&refunded));
        assert_eq!((e["state"].as_str(), e["in_latest_run"].as_bool()), (Some("superseded"), Some(true)), "{e}");
        assert_eq!(e["case_code"].as_str(), Some(refunded.case_code.as_str()), "{e}");
        assert_eq!((e["recorded_amount"].as_i64(), e["settled_amount"].as_i64()), (Some(refunded.amount), Some(refunded.amount)), "{e}");
        let e = row(payment_key(&written));
        assert_eq!((e["in_latest_run"].as_bool(), e["case_code"].as_str()), (Some(false), None), "{e}");
        let e = row(line_key(&lost));
        assert_eq!((e["state"].as_str(), e["in_latest_run"].as_bool()), (Some("open"), Some(true)), "{e}");
        assert_eq!(e["case_code"].as_str(), Some(lost.case_code.as_str()), "{e}");

        // The report: JSON lists the exceptions; CSV every item, in key order.
        let (s, json_report) = json(w.app.get("/api/v1/reconciliations/2024-07-15?gateway=vnpay", &w.auditor).await).await;
        assert_eq!(s, 200);
        let exception_keys: Vec<&str> = json_report["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
        let expected: Vec<&str> = all.iter().filter(|i| i["category"] != "matched").map(|i| i["item_key"].as_str().unwrap()).collect();
        assert_eq!(exception_keys, expected);
        let csv = w.app.get("/api/v1/reconciliations/2024-07-15?gateway=vnpay&format=csv", &w.auditor).await.text().await.unwrap();
        let csv_keys: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(csv_keys, keys, "{csv}");

        // The day: its latest run.
        let (s, day) = json(w.app.get("/api/v1/days/2024-07-15", &w.auditor).await).await;
        assert_eq!(s, 200, "{day}");
        let vnpay = day["gateways"].as_array().unwrap().iter().find(|g| g["gateway"] == "vnpay").unwrap();
        assert_eq!(vnpay["report_hash"], report["report_hash"], "{day}");
    }
}

across! {
    /// The first occurrence of a line's (number, status), decided at import in the file's line
    /// order and against the earlier files' lines: a repeat in a later file, or later in the
    /// same file, is a duplicate line; the same number with another status is not.
    async fn a_line_repeated_in_a_later_file_or_the_same_file_is_a_duplicate(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let p1 = w.pay("2024-07-15", false).await;
        let p2 = w.pay("2024-07-15", false).await;
        let at = "2024-07-15T10:05:00+07:00";
        w.import(&[(&p1, p1.amount, LineStatus::Success, at), (&p2, p2.amount, LineStatus::Success, at)]).await;
        let later = "2024-07-15T12:00:00+07:00";
        w.import(&[
            (&p2, p2.amount, LineStatus::Success, later),
            (&p1, p1.amount, LineStatus::Refund, later),
            (&p1, p1.amount, LineStatus::Refund, later),
        ])
        .await;
        w.at("2024-07-15T20:00:00+07:00");
        let report = w.run("2024-07-15").await;
        let count = |c: &str| report["summary"][c]["count"].as_i64().unwrap_or(0);
        assert_eq!((count("matched"), count("duplicate_settlement_line"), count("refund")), (2, 2, 1), "{report}");
        let all = walk_api(&w, "", 100).await;
        let category = |key: String| all.iter().find(|i| i["item_key"] == key).map(|i| i["category"].clone());
        assert_eq!(category(line_key(&p2)), Some(Value::from("matched")), "{all:?}");
        assert_eq!(category(format!("vnpay:{}:refund", p1.no)), Some(Value::from("refund")), "{all:?}");
    }
}

across! {
    /// A later file whose numbers span more earlier lines than it has (an old transaction's
    /// line beside a new one's, as a refund of an old payment makes): its repeats are found by
    /// looking each number up, not by reading the whole range.
    async fn a_repeat_across_a_wide_number_range_is_a_duplicate(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let mut paid = Vec::new();
        for _ in 0..5 {
            paid.push(w.pay("2024-07-15", false).await);
        }
        paid.sort_by(|a, b| a.no.cmp(&b.no));
        let at = "2024-07-15T10:05:00+07:00";
        let first: Vec<_> = paid.iter().map(|p| (p, p.amount, LineStatus::Success, at)).collect();
        w.import(&first).await;
        let (low, high) = (&paid[0], &paid[4]);
        let later = "2024-07-15T12:00:00+07:00";
        w.import(&[(low, low.amount, LineStatus::Success, later), (high, high.amount, LineStatus::Success, later)]).await;
        w.at("2024-07-15T20:00:00+07:00");
        let report = w.run("2024-07-15").await;
        let count = |c: &str| report["summary"][c]["count"].as_i64().unwrap_or(0);
        assert_eq!((count("matched"), count("duplicate_settlement_line")), (5, 2), "{report}");
    }
}

/// On a PostgreSQL database that sorts text by a language's rules, a run's items still come in
/// byte order, page after page, whether stored as rows or as blocks: the blocks are packed and
/// merged in byte order, so the rows and the cursor must compare keys the same way (migration
/// 0014 gives the key columns the `C` collation). Keys that mix case sort apart under the two.
#[tokio::test]
async fn items_page_in_byte_order_on_a_language_collated_postgresql() {
    let Some(url) = crate::pg::fresh_language_collated_database().await else { return };
    let store = Store::connect(&url).await.unwrap();
    let mut items = items();
    for (n, i) in items.iter_mut().enumerate() {
        i.key = format!("vnpay:{}{n:02}", if n % 2 == 0 { "K" } else { "k" });
    }
    items.sort_by(|a, b| a.key.cmp(&b.key));
    store_run(&store, "run_rows", &items, &|_| true).await;
    store_run(&store, "run_blocks", &items, &|k| k == "vnpay:k05").await;
    let all: Vec<ItemRecord> = items.iter().map(ItemRecord::from).collect();
    for run in ["run_rows", "run_blocks"] {
        for limit in [1, 2, 3, 5, 20] {
            assert_eq!(walk(&store, run, None, false, limit).await, all, "{run}, every item, pages of {limit}");
        }
        for i in &all {
            assert_eq!(store.run_item(run, &i.item_key).await.unwrap().as_ref(), Some(i), "{run}");
        }
    }
}

across! {
    /// An exception created while a run computes (by a run of the same date that saved first) is
    /// not lost on the run that saves after it: that run is refused and computed again, so the
    /// exception's item, matched now, is a row the exception list shows, and the exception is
    /// superseded. Before, the second run kept its older view of the exceptions: the exception
    /// stayed open and its item went into a block, out of the exception list's sight.
    async fn an_exception_created_during_a_run_is_seen_by_its_save(w) {
        use feerecon::domain::recon::ExceptionState;
        use feerecon::recon::RunPhase;
        use feerecon::store::ExceptionChange;
        w.at("2024-07-15T10:00:00+07:00");
        let mut paid = Vec::new();
        for _ in 0..4 {
            paid.push(w.pay("2024-07-15", false).await);
        }
        let at = "2024-07-15T10:05:00+07:00";
        let lines: Vec<_> = paid.iter().map(|p| (p, p.amount, LineStatus::Success, at)).collect();
        w.import(&lines).await;
        w.at("2024-07-15T20:00:00+07:00");
        let date = NaiveDate::from_ymd_opt(2024, 7, 15).unwrap();
        let key = line_key(&paid[1]);
        let app = &w.app;
        let finance = app.finance_without_key();
        // As the run starts saving (its view of the exceptions read), another run's exception
        // for the key of one of this run's matched items is committed.
        let created = std::sync::atomic::AtomicBool::new(false);
        let handle = tokio::runtime::Handle::current();
        let store = app.store.clone();
        let observe = |p: RunPhase| {
            if matches!(p, RunPhase::Saving { .. }) && !created.swap(true, std::sync::atomic::Ordering::SeqCst) {
                tokio::task::block_in_place(|| {
                    handle.block_on(async {
                        let mut tx = store.write().await.unwrap();
                        let change = ExceptionChange {
                            exception_id: key.clone(),
                            from_state: None,
                            gateway: Gateway::Vnpay,
                            business_date: date,
                            category: Category::UnconfirmedInRecords,
                            state: ExceptionState::Open,
                            resolution: None,
                            posting_id: None,
                            keep_posting: false,
                            rejection: None,
                        };
                        assert!(tx.apply_exception_changes(&[change], chrono::Utc::now()).await.unwrap());
                        tx.commit().await.unwrap();
                    })
                });
            }
        };
        let run = finance.run_observed(date, Gateway::Vnpay, "finance-x", &observe).await.unwrap();
        assert!(created.load(std::sync::atomic::Ordering::SeqCst), "the exception was created during the run");
        assert_eq!(w.exception(&key).await.state.as_str(), "superseded", "the saved run saw the exception");
        let (s, list) = json(w.app.get("/api/v1/exceptions?gateway=vnpay&limit=100", &w.auditor).await).await;
        assert_eq!(s, 200, "{list}");
        let e = list["items"].as_array().unwrap().iter().find(|e| e["id"] == key.as_str()).cloned().unwrap_or_else(|| panic!("{list}"));
        assert_eq!(e["in_latest_run"].as_bool(), Some(true), "its matched item is a row of the latest run: {e}");
        assert_eq!(e["case_code"].as_str(), Some(paid[1].case_code.as_str()), "{e}");
        let item = w.app.store.run_item(&run.run.run_id, &key).await.unwrap().expect("the item");
        assert_eq!(item.category, Category::Matched);
    }
}
