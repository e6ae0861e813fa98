//! The `feerecon` binary: everything is in the library; see `feerecon::cli`.

fn main() -> std::process::ExitCode {
    feerecon::cli::main()
}
