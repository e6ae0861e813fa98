//! The load generator: C keep-alive HTTP/1.1 connections on loopback, closed loop (each connection
//! sends its next request when the previous answer has arrived), pre-built request bytes, latency of
//! every request in an HDR histogram (µs, 3 significant digits).
//!
//! A hand-written client rather than a general one: it shares the machine's two cores with the
//! server it measures, so it must cost as little as possible (one thread by default; its CPU time
//! per request is reported beside the server's: about 25–30 µs on the project's VM, mostly system
//! calls). It understands only what the servers under test send: a status line, headers with
//! `content-length`, and a body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The answer every request must get (a substring of the body), e.g. `"RspCode":"00"`.
pub type Expect = &'static str;

/// One load phase's result.
pub struct Outcome {
    pub requests: usize,
    /// Answers that were not 200 with the expected body.
    pub unexpected: usize,
    /// Connection errors and time-outs.
    pub errors: usize,
    /// The first unexpected answer, for the report.
    pub first_unexpected: Option<String>,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn clean(&self) -> bool {
        self.unexpected == 0 && self.errors == 0
    }
}

/// `GET path?query HTTP/1.1` as raw bytes, keep-alive.
pub fn get_request(path_and_query: &str) -> Vec<u8> {
    format!("GET {path_and_query} HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: feerecon-bench\r\n\r\n").into_bytes()
}

/// A request that gets no answer within this is counted as an error and its connection dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends every request of `requests` once, over `connections` connections, on `threads` threads
/// (1: a current-thread runtime, which leaves the other core to the server).
pub fn run(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    expect: Expect,
    threads: usize,
) -> Outcome {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .expect("the load generator's runtime");
    rt.block_on(run_async(addr, requests, connections, expect))
}

async fn run_async(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>, connections: usize, expect: Expect) -> Outcome {
    // Connect everything first, so that connection set-up is not in the measured interval.
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        streams.push(connect(addr).await.expect("connect to the server under test"));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for stream in streams {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.push(tokio::spawn(connection(addr, stream, requests, next, expect)));
    }
    let mut out = Outcome {
        requests: 0,
        unexpected: 0,
        errors: 0,
        first_unexpected: None,
        elapsed: Duration::ZERO,
        latency_us: new_histogram(),
    };
    for t in tasks {
        let r = t.await.expect("a load task panicked");
        out.requests += r.requests;
        out.unexpected += r.unexpected;
        out.errors += r.errors;
        if out.first_unexpected.is_none() {
            out.first_unexpected = r.first_unexpected;
        }
        out.latency_us.add(&r.latency_us).expect("histograms of one shape");
    }
    out.elapsed = start.elapsed();
    out
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn connection(
    addr: SocketAddr,
    stream: TcpStream,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    expect: Expect,
) -> Outcome {
    let mut out = Outcome {
        requests: 0,
        unexpected: 0,
        errors: 0,
        first_unexpected: None,
        elapsed: Duration::ZERO,
        latency_us: new_histogram(),
    };
    let mut stream = Some(stream);
    let mut buf = Vec::with_capacity(4096);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        let s = match stream.take() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => s,
                Err(_) => {
                    out.errors += 1;
                    continue;
                }
            },
        };
        let mut s = s;
        let t0 = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut s, req, &mut buf)).await;
        let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        out.requests += 1;
        out.latency_us.saturating_record(us);
        match answer {
            Ok(Ok((status, body))) => {
                if status != 200 || !body.contains(expect) {
                    out.unexpected += 1;
                    if out.first_unexpected.is_none() {
                        out.first_unexpected = Some(format!("{status} {body}"));
                    }
                }
                stream = Some(s);
            }
            Ok(Err(e)) => {
                out.errors += 1;
                if out.first_unexpected.is_none() {
                    out.first_unexpected = Some(format!("connection error: {e}"));
                }
            }
            Err(_) => {
                out.errors += 1;
                if out.first_unexpected.is_none() {
                    out.first_unexpected = Some("no answer within 60 s".into());
                }
            }
        }
    }
    out
}

/// Writes one request and reads its answer: (status, body as text).
async fn exchange(s: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> std::io::Result<(u16, String)> {
    s.write_all(req).await?;
    buf.clear();
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let head_end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        if read_more(s, buf).await? == 0 {
            return Err(bad("the server closed the connection"));
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("a non-UTF-8 header"))?;
    let status: u16 = head.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| bad("no status line"))?;
    let length = head
        .split("\r\n")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
        })
        .ok_or_else(|| bad("an answer without content-length"))?;
    while buf.len() < head_end + length {
        if read_more(s, buf).await? == 0 {
            return Err(bad("the server closed the connection mid-answer"));
        }
    }
    Ok((status, String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned()))
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let len = buf.len();
    buf.resize(len + 4096, 0);
    let n = s.read(&mut buf[len..]).await?;
    buf.truncate(len + n);
    Ok(n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
