"""Builds, from the service's SQLite database after first deliveries, a base database in which the
last K confirmed payments are pending again (their rows removed, the chain head and receipt
number moved back), and a SQL script that writes those rows back the way the committer's batch
does (its reads, then one multi-row statement per table, one transaction, the service's pragmas).

make_batch.py SERVICE.db BASE.db BATCH.sql K (see replay.sh)."""
import sqlite3, shutil, sys

src, base, script, K = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
shutil.copy(src, base)
db = sqlite3.connect(base)
db.isolation_level = None
cols = lambda t: [r[1] for r in db.execute(f"pragma table_info({t})")]
def lits(t, where, order):
    cs = cols(t)
    sel = " || ',' || ".join(f"quote({c})" for c in cs)
    rows = [r[0] for r in db.execute(f"SELECT {sel} FROM {t} WHERE {where} ORDER BY {order}")]
    return cs, rows
# the K payments whose postings are last in the chain
pids = [r[0] for r in db.execute("""
  SELECT substr(refs, 9, instr(refs, ';') - 9) AS pid, MAX(seq) m FROM ledger_entries
  WHERE refs LIKE 'payment=%' GROUP BY pid ORDER BY m DESC LIMIT ?""", (K,))]
assert len(pids) == K, pids
inl = "(" + ",".join(f"'{p}'" for p in pids) + ")"
posts = [r[0] for r in db.execute(f"SELECT DISTINCT posting_id FROM ledger_entries WHERE substr(refs, 9, instr(refs, ';') - 9) IN {inl}")]
pin = "(" + ",".join(f"'{p}'" for p in posts) + ")"
parts = {}
parts['ledger_entries'] = lits('ledger_entries', f"posting_id IN {pin}", "seq")
parts['ledger_postings'] = lits('ledger_postings', f"posting_id IN {pin}", "posting_id")
parts['callbacks'] = lits('callbacks', f"payment_id IN {inl} AND result = 'applied'", "received_at")
parts['payment_events'] = lits('payment_events', f"payment_id IN {inl}", "payment_id")
parts['outbox'] = lits('outbox', f"payment_id IN {inl}", "case_code")
parts['receipts'] = lits('receipts', f"payment_id IN {inl}", "number")
upd = list(db.execute(f"SELECT quote(payment_id), quote(status), quote(gateway_txn_no), quote(paid_at), quote(paid_date), quote(updated_at), quote(confirmed_at) FROM payments WHERE payment_id IN {inl}"))
head = db.execute("SELECT last_seq, last_hash FROM chain_heads WHERE chain='ledger'").fetchone()
minseq = db.execute(f"SELECT MIN(seq) FROM ledger_entries WHERE posting_id IN {pin}").fetchone()[0]
prevhash = db.execute(f"SELECT prev_hash FROM ledger_entries WHERE seq = {minseq}").fetchone()[0]
seqrow = db.execute("SELECT template, symbol, year, last_number FROM receipt_sequences").fetchall()
print("payments", len(pids), "entries", len(parts['ledger_entries'][1]), "callbacks", len(parts['callbacks'][1]),
      "outbox", len(parts['outbox'][1]), "receipts", len(parts['receipts'][1]), "seqrows", seqrow, file=sys.stderr)
# remove them (append-only triggers dropped for the moment, then restored as they were)
trig = db.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'").fetchall()
db.execute("BEGIN")
for n, _ in trig: db.execute(f"DROP TRIGGER {n}")
for t, w in [('ledger_entries', f"posting_id IN {pin}"), ('ledger_postings', f"posting_id IN {pin}"),
             ('callbacks', f"payment_id IN {inl} AND result = 'applied'"), ('payment_events', f"payment_id IN {inl}"),
             ('outbox', f"payment_id IN {inl}"), ('receipts', f"payment_id IN {inl}")]:
    db.execute(f"DELETE FROM {t} WHERE {w}")
db.execute(f"UPDATE payments SET status='pending', gateway_txn_no=NULL, paid_at=NULL, paid_date=NULL, confirmed_at=NULL, updated_at=created_at WHERE payment_id IN {inl}")
db.execute("UPDATE chain_heads SET last_seq = ?, last_hash = ? WHERE chain='ledger'", (minseq - 1, prevhash))
nrec = len(parts['receipts'][1])
db.execute("UPDATE receipt_sequences SET last_number = last_number - ?", (nrec,))
for _, s in trig: db.execute(s)
db.execute("COMMIT")
db.execute("VACUUM")
db.close()
out = ["PRAGMA foreign_keys = ON;", "PRAGMA journal_mode = WAL;", "PRAGMA synchronous = FULL;",
       "PRAGMA cache_size = -65536;", "SELECT count(*) FROM sqlite_master;", "BEGIN IMMEDIATE;",
       # the batch's reads (a subset that touches the indexes under test)
       f"SELECT * FROM payments p WHERE p.txn_ref IN (SELECT txn_ref FROM payments WHERE payment_id IN {inl});",
       f"SELECT payment_id, flag FROM payment_flags WHERE payment_id IN {inl};",
       f"SELECT payment_id, gateway_txn_no, outcome FROM payment_events WHERE payment_id IN {inl};",
       "SELECT last_seq, last_hash FROM chain_heads WHERE chain = 'ledger';",
       f"SELECT idem_key, posting_id FROM ledger_postings WHERE idem_key IN (SELECT 'x' || posting_id FROM ledger_postings LIMIT 0);",
       f"UPDATE chain_heads SET last_seq = {head[0]}, last_hash = '{head[1]}' WHERE chain = 'ledger';"]
tmpl, sym, yr, last = seqrow[0]
out.append(f"INSERT INTO receipt_sequences (template, symbol, year, last_number) VALUES ('{tmpl}', '{sym}', {yr}, {nrec}) ON CONFLICT (template, symbol, year) DO UPDATE SET last_number = receipt_sequences.last_number + EXCLUDED.last_number;")
def ins(t):
    cs, rows = parts[t]
    if rows:
        out.append(f"INSERT INTO {t} ({', '.join(cs)}) VALUES " + ", ".join(f"({r})" for r in rows) + ";")
ins('ledger_entries'); ins('ledger_postings'); ins('callbacks')
vals = ", ".join("(" + ", ".join(u[:5]) + ", 1)" for u in upd)
at = upd[0][5]
out.append(f"WITH v (payment_id, status, gateway_txn_no, paid_at, paid_date, confirmed) AS (VALUES {vals}) UPDATE payments SET status = v.status, gateway_txn_no = v.gateway_txn_no, paid_at = v.paid_at, paid_date = v.paid_date, updated_at = {at}, confirmed_at = CASE WHEN v.confirmed THEN {at} ELSE payments.confirmed_at END FROM v WHERE payments.payment_id = v.payment_id;")
ins('payment_events'); ins('outbox'); ins('receipts')
out.append("COMMIT;")
open(script, "w").write("\n".join(out) + "\n")
