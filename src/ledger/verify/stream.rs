//! The first pass of `verify` read from disk (issue 23): `entries.csv` is read in blocks of whole
//! rows while the blocks before are hashed (the file's SHA-256, in order, on one thread) and their
//! rows scanned (blocks dealt in turn to two threads, each block a `Scan` that starts mid-file);
//! the scans are then joined in file order, as `rows::fast` joins its two halves.
//!
//! Reading the whole file first cost a third of verify's time on its own (the kernel's copy and
//! the page faults of a fresh 424 MiB buffer) before any row was scanned; block by block, the
//! reading overlaps the work and the blocks' memory is reused. Anything the fast path does not
//! answer (an unusual file, any row error, blocks that do not meet) and the file is read whole
//! and given to `rows::check_rows`, which gives the answer or the error the in-memory path gives.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use super::Failure;
use super::rows::{Rows, Scan, check_rows, part};
use crate::ledger::export::{ENTRIES_HEADER, Manifest};

/// The size of a block read: large enough for a few thousand rows, small enough to stay in the
/// allocator's reused memory.
pub(super) const BLOCK: usize = 4 << 20;

/// The rows (or the first failure) and the file's SHA-256 in hex; an I/O error as such.
pub(super) fn rows_from_file(
    path: &Path,
    m: &Manifest,
    block: usize,
) -> std::io::Result<(Result<Rows, Failure>, String)> {
    if let Some(answer) = streamed(path, m, block)? {
        return Ok(answer);
    }
    let bytes = std::fs::read(path)?;
    let digest = hex_sha256(&bytes);
    Ok((check_rows(&bytes, m), digest))
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A block of whole rows and its position in the file.
struct Block {
    index: usize,
    bytes: Arc<Vec<u8>>,
}

/// `None` when the whole file must be read and checked at once.
pub(super) fn streamed(
    path: &Path,
    m: &Manifest,
    block: usize,
) -> std::io::Result<Option<(Result<Rows, Failure>, String)>> {
    let mut file = std::fs::File::open(path)?;
    let header = [ENTRIES_HEADER.join(",").as_bytes(), b"\n"].concat();
    let count = usize::try_from(m.entry_count).unwrap_or(0);
    std::thread::scope(|s| {
        let (to_digest, digest_rx) = sync_channel::<Arc<Vec<u8>>>(4);
        let digest = s.spawn(move || {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            for b in digest_rx {
                h.update(b.as_slice());
            }
            hex::encode(h.finalize())
        });
        let header = header.as_slice();
        let worker = |rx: Receiver<Block>| {
            move || {
                let mut scans = Vec::new();
                for b in rx {
                    let scan = if b.index == 0 {
                        b.bytes.strip_prefix(header).and_then(|rows| part(rows, m, false, count))
                    } else {
                        part(&b.bytes, m, true, b.bytes.len() / 256)
                    };
                    scans.push((b.index, scan));
                }
                scans
            }
        };
        let (to_a, rx_a) = sync_channel::<Block>(2);
        let (to_b, rx_b) = sync_channel::<Block>(2);
        let (a, b) = (s.spawn(worker(rx_a)), s.spawn(worker(rx_b)));
        // Read: each block ends at its last line break; the rest starts the next block.
        let mut index = 0;
        let mut carry: Vec<u8> = Vec::new();
        let mut read_error = None;
        loop {
            // The carried bytes hold no line break (they follow the last one, or there was none):
            // only what is read now is searched, and a row longer than a block grows one buffer
            // instead of being copied and searched again at each read.
            let mut buf = std::mem::take(&mut carry);
            let searched = buf.len();
            buf.reserve(block);
            let at_end = match (&mut file).take(block as u64).read_to_end(&mut buf) {
                Ok(n) => n < block,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            };
            if !at_end {
                match memchr::memrchr(b'\n', &buf[searched..]) {
                    Some(i) => carry.extend_from_slice(&buf[searched + i + 1..]),
                    None => {
                        // A row longer than a block: read on.
                        carry = buf;
                        continue;
                    }
                }
                buf.truncate(buf.len() - carry.len());
            }
            if !buf.is_empty() {
                let bytes = Arc::new(buf);
                // A thread that stopped early dropped its receiver: its panic surfaces at join.
                let _ = to_digest.send(Arc::clone(&bytes));
                let _ = if index % 2 == 0 { &to_a } else { &to_b }.send(Block { index, bytes });
                index += 1;
            }
            if at_end {
                break;
            }
        }
        drop((to_digest, to_a, to_b));
        let digest: String = join(digest);
        let mut scans: Vec<(usize, Option<Scan>)> = join(a);
        scans.extend(join(b));
        if let Some(e) = read_error {
            return Err(e);
        }
        scans.sort_unstable_by_key(|(i, _)| *i);
        let mut parts = scans.into_iter().map(|(_, s)| s);
        let Some(mut whole) = parts.next().flatten() else { return Ok(None) };
        for p in parts {
            match p.and_then(|p| whole.join(p)) {
                Some(joined) => whole = joined,
                None => return Ok(None),
            }
        }
        Ok(Some((whole.finish(m), digest)))
    })
}

/// A thread's result; a panic in it is a bug: pass it on.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}
