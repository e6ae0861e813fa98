//! Instruction counts, which the noisy machine cannot disturb (`FEERECON_BENCH_CALLGRIND=DIR`): the
//! servers run under `valgrind --tool=callgrind` with instrumentation off, switched on only for the
//! first round's phases at 64 connections and dumped after each (`callgrind_control`). Each phase
//! prints user-space instructions per request; each dump is `DIR/<server>.<pid>.out.<n>` (read it
//! with `callgrind_annotate`), listed in `DIR/dumps.tsv` with its phase, requests and instructions.
//! Everything runs 20–50× slower: use a small `FEERECON_BENCH_CALLBACKS` (a few hundred). Under
//! valgrind the CPU's SHA extensions are not used, so SHA-256 counts more than it costs natively.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn dir() -> Option<PathBuf> {
    std::env::var_os("FEERECON_BENCH_CALLGRIND").map(PathBuf::from)
}

/// `program` as a command, under callgrind when asked; `name` names its output files.
pub fn command(program: &Path, name: &str) -> Command {
    let Some(dir) = dir() else { return Command::new(program) };
    let _ = std::fs::create_dir_all(&dir);
    let mut c = Command::new("valgrind");
    c.args(["--tool=callgrind", "--instr-atstart=no", "--separate-threads=no"])
        .arg(format!("--callgrind-out-file={}/{name}.%p.out", dir.display()))
        .arg(program);
    c
}

fn control(args: &[&str], pid: u32) {
    let _ = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn instrument(pid: u32, on: bool) {
    control(&["-i", if on { "on" } else { "off" }], pid);
}

/// Dumps the counts since the last dump, and notes which phase and how many requests they cover.
pub fn dump(pid: u32, label: &str, requests: usize) {
    let Some(dir) = dir() else { return };
    let before: Vec<PathBuf> = files(&dir);
    control(&["-d", label], pid);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let new: Vec<String> =
        files(&dir).into_iter().filter(|f| !before.contains(f)).map(|f| f.display().to_string()).collect();
    // A dump's `totals:` line is its instruction count (`summary:` can be wrong after a toggle).
    let instructions: u64 = new
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| t.lines().find_map(|l| l.strip_prefix("totals: ")).and_then(|v| v.trim().parse::<u64>().ok()))
        .sum();
    eprintln!(
        "callbacks: {label}: {} user-space instructions per request (callgrind, {requests} requests)",
        instructions / requests.max(1) as u64
    );
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("dumps.tsv")) {
        let _ = writeln!(f, "{label}\t{requests}\t{instructions}\t{}", new.join(","));
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default()
}
