use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = meshdeck::cli::Cli::parse();
    match meshdeck::cmd::main(cli) {
        Ok(code) => code,
        Err(e) => {
            meshdeck::say!("meshdeck: {e:#}");
            ExitCode::from(2)
        }
    }
}
