//! The command line: `pinip run` (the agent), `pinip status`, and with the `simulate`
//! feature `pinip simulate` (the agent against an embedded cluster and cloud).

pub mod run;
pub mod status;
pub mod status_report;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::cloud::factory::ProviderFactory;
use crate::config::RunArgs;
#[cfg(not(feature = "simulate"))]
use crate::process::exit::config_error;
use crate::process::exit::EXIT_CONFIG;
use crate::process::logging::{self, LogLevel};
use status::StatusArgs;

#[cfg(feature = "simulate")]
use crate::simulate::SimulateArgs;

#[derive(Parser, Debug)]
#[command(
    name = "pinip",
    // The commit comes from build.rs (the Dockerfile's PINIP_COMMIT, else git).
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PINIP_COMMIT"), ")"),
    disable_version_flag = true,
    about = "Pins reserved static public IPs to Kubernetes nodes"
)]
pub struct Cli {
    /// Print the version (`-v` as in KubeIP, or `-V`).
    #[arg(short = 'v', long = "version", visible_short_alias = 'V', action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent for one node (what the DaemonSet runs).
    Run(Box<RunArgs>),
    /// Run real agents against an embedded simulated cluster and cloud.
    #[cfg(feature = "simulate")]
    Simulate(Box<SimulateArgs>),
    /// The playground is not part of this build (the image's agent binary).
    #[cfg(not(feature = "simulate"))]
    #[command(hide = true, disable_help_flag = true)]
    Simulate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Where every node stands: addresses, claims, stale records, and (--cloud) the pool.
    Status(Box<StatusArgs>),
}

/// What `pinip simulate` says on a build without the playground.
pub const NO_PLAYGROUND: &str = "this pinip binary is the agent image's build, without the simulated cluster and cloud; for the playground run `cargo run -- simulate` in a checkout of pinip (the default features include `simulate`)";

impl Command {
    /// Log level, JSON lines, developer format.
    pub fn log_settings(&self) -> (LogLevel, bool, bool) {
        match self {
            Command::Run(args) => (args.log.log_level, args.log.log_json, args.log.dev_mode),
            #[cfg(feature = "simulate")]
            Command::Simulate(args) => (args.log.log_level, args.log.log_json, false),
            #[cfg(not(feature = "simulate"))]
            Command::Simulate { .. } => (LogLevel::Warn, false, false),
            Command::Status(args) => (args.log.log_level, args.log.log_json, false),
        }
    }
}

/// The whole program: parse the command line, set up logging, run the command with
/// `providers` serving the nodes' clouds. `main` of pinip and of a build with extra
/// providers compiled in (examples/custom-provider) is this one call.
pub async fn main_with(providers: Arc<dyn ProviderFactory>) -> ExitCode {
    crate::cloud::tls::install_crypto_provider();
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
            // Logging is not set up yet (the settings did not parse), but LOG_JSON may
            // have: every line the process writes follows it.
            let json = std::env::var("LOG_JSON").is_ok_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
            });
            eprintln!("{}", crate::process::exit::config_error_line(first, json));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (level, json, dev_mode) = cli.command.log_settings();
    logging::init(level, json, dev_mode);
    match cli.command {
        Command::Run(args) => run::command(*args, providers).await,
        #[cfg(feature = "simulate")]
        Command::Simulate(args) => crate::simulate::command(*args).await,
        #[cfg(not(feature = "simulate"))]
        Command::Simulate { .. } => config_error(NO_PLAYGROUND),
        Command::Status(args) => status::command(*args, providers).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
