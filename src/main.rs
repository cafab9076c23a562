use std::process::ExitCode;

use clap::Parser;
use pinip::cli::{self, Cli, Command, EXIT_CONFIG};
use pinip::{logging, simulate};

#[tokio::main]
async fn main() -> ExitCode {
    pinip::tls::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line saying what is wrong (clap's first line), not a screen of usage.
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("pinip: configuration error: {first}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (level, json, dev_mode) = cli.command.log_settings();
    logging::init(level, json, dev_mode);
    match cli.command {
        Command::Run(args) => cli::run(*args).await,
        Command::Simulate(args) => simulate::command(*args).await,
        Command::Status(args) => pinip::status_command::command(*args).await,
    }
}
