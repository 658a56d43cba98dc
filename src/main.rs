//! The `rush` command-line inspector: `cargo run --release --features cli -- <folder> <command>`.
//! It decodes no event types; see `rush::cli` to build one that decodes yours.

fn main() -> std::process::ExitCode {
    rush::cli::Cli::new().run(std::env::args_os())
}
