//! The `commute` command: parses arguments, runs, and maps the outcome to an exit code
//! (0 ok, 1 a declared check failed, 2 error).

fn main() -> std::process::ExitCode {
    commute_host::cli::main()
}
