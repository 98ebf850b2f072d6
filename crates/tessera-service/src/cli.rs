//! The command line every service shares, and the `main` of a service binary.
//!
//! `serve` (the default) runs every part; `run-rest`, `consume-events` and `run-workers` run
//! the parts of one role (offered when the service has such parts); `migrate-db` (when the
//! service has migrations); `config example` prints every key with its default, `config
//! check` loads and validates the config and prints it with secrets masked. A service adds
//! its own commands as a `clap::Subcommand` ([`Service::Commands`]). `--help` lists every
//! config key with its environment variable and default.
//!
//! Exit codes: 0 on success, 1 on a runtime failure, 2 on a configuration or usage error;
//! a failure prints its whole cause chain on stderr.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, FromArgMatches, Subcommand};

use crate::error::{Error, Failure};
use crate::lifecycle::{Parts, Role};
use crate::{Service, ServiceConfig, load_config_file, run};

/// The commands every service has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// Every part in one process.
    Serve,
    /// The parts of one role.
    Run(Parts),
    /// `migrate-db`.
    MigrateDb,
    /// `config example`.
    ConfigExample,
    /// `config check`.
    ConfigCheck,
}

/// A parsed command line.
#[derive(Debug)]
pub enum Command<X> {
    /// One of the shared commands.
    Shared(Shared),
    /// One of the service's own.
    Service(X),
}

/// For services without commands of their own.
#[derive(Debug, Clone, Copy)]
pub enum NoCommands {}

impl FromArgMatches for NoCommands {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let name = matches.subcommand_name().unwrap_or_default();
        Err(clap::Error::raw(
            clap::error::ErrorKind::InvalidSubcommand,
            format!("unknown command {name:?}"),
        ))
    }

    fn update_from_arg_matches(&mut self, _matches: &ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl Subcommand for NoCommands {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn has_subcommand(_name: &str) -> bool {
        false
    }
}

const ROLE_COMMANDS: [(Role, &str, &str); 3] = [
    (
        Role::Rest,
        "run-rest",
        "Run only the REST API (and the tasks of the process serving it)",
    ),
    (
        Role::Events,
        "consume-events",
        "Run only the event consumers",
    ),
    (
        Role::Workers,
        "run-workers",
        "Run only the background workers",
    ),
];

const EXIT_CODES: &str = "Exit status: 0 on success, 1 on a runtime failure, 2 on a \
                          configuration or usage error.";

/// The clap command of service `S`, with every config key in the long help.
pub fn command<S: Service>() -> clap::Command {
    let info = S::INFO;
    let prefix = <S::Config as ServiceConfig>::PREFIX;
    let loader = crate::config_loader::<S::Config>(tessera_config::Loader::new(prefix));
    let keys = tessera_config::help_text_with::<S::Config>(&loader).unwrap_or_default();
    let mut cmd = clap::Command::new(info.name)
        .version(info.version)
        .about(info.about)
        .long_about(format!("{}\n\n{EXIT_CODES}", info.long_about))
        .after_long_help(keys)
        .arg(
            clap::Arg::new("config")
                .long("config")
                .global(true)
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help(format!(
                    "The config file (YAML, or JSON); instead of {}_CONFIG_YAML and ./.{}.yaml",
                    prefix.to_uppercase(),
                    prefix.to_lowercase()
                )),
        )
        .subcommand(clap::Command::new("serve").about("Run every part in one process (default)"));
    for (role, name, about) in ROLE_COMMANDS {
        if info.roles.contains(&role) {
            cmd = cmd.subcommand(clap::Command::new(name).about(about));
        }
    }
    if info.migrations {
        cmd = cmd.subcommand(
            clap::Command::new("migrate-db")
                .about("Create the collections and bring the database to this version"),
        );
    }
    cmd = cmd.subcommand(
        clap::Command::new("config")
            .about("Show the configuration (default: config example)")
            .subcommand(
                clap::Command::new("example")
                    .about("Print every key with its default as YAML; required keys commented out"),
            )
            .subcommand(
                clap::Command::new("check")
                    .about("Load and validate the configuration and print it, secrets masked"),
            ),
    );
    // A derived `Subcommand` enum's doc comment would become the binary's about line.
    S::Commands::augment_subcommands(cmd)
        .about(info.about)
        .long_about(format!("{}\n\n{EXIT_CODES}", info.long_about))
}

/// Parses `args` (the first is the program name) into a command of `S`.
pub fn parse<S: Service>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Command<S::Commands>, clap::Error> {
    parse_with_config::<S>(args).map(|(command, _)| command)
}

/// [`parse`], and the file `--config` names.
pub fn parse_with_config<S: Service>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<(Command<S::Commands>, Option<PathBuf>), clap::Error> {
    let matches = command::<S>().try_get_matches_from(args)?;
    let file = matches.get_one::<PathBuf>("config").cloned();
    let command = parse_matches::<S>(&matches)?;
    Ok((command, file))
}

fn parse_matches<S: Service>(matches: &ArgMatches) -> Result<Command<S::Commands>, clap::Error> {
    let shared = match matches.subcommand() {
        None | Some(("serve", _)) => Shared::Serve,
        Some(("run-rest", _)) => Shared::Run(Parts::REST),
        Some(("consume-events", _)) => Shared::Run(Parts::CONSUMER),
        Some(("run-workers", _)) => Shared::Run(Parts::WORKERS),
        Some(("migrate-db", _)) => Shared::MigrateDb,
        Some(("config", sub)) => match sub.subcommand_name() {
            Some("check") => Shared::ConfigCheck,
            _ => Shared::ConfigExample,
        },
        Some(_) => return S::Commands::from_arg_matches(matches).map(Command::Service),
    };
    Ok(Command::Shared(shared))
}

fn print(text: &str) -> Result<(), Error> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|source| Error::Io {
            what: "stdout".into(),
            source,
        })
}

/// Installs logging to stderr (one-shot commands keep stdout for their output).
fn log_to_stderr<S: Service>(config: &S::Config) {
    if let Ok(subscriber) = tessera_http::subscriber(config.log(), std::io::stderr) {
        // Already installed is fine.
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

/// Runs a parsed command of `S`. Serving commands log to stdout, one-shot commands to
/// stderr.
pub async fn execute<S: Service>(command: Command<S::Commands>) -> Result<(), S::Error> {
    execute_with::<S>(command, None).await
}

/// [`execute`] with the config from `file` (`--config`) when given.
pub async fn execute_with<S: Service>(
    command: Command<S::Commands>,
    file: Option<PathBuf>,
) -> Result<(), S::Error> {
    let load_config = || load_config_file::<S>(file.as_deref());
    let prefix = <S::Config as ServiceConfig>::PREFIX;
    let shared = match command {
        Command::Service(command) => {
            let config = || {
                let config = load_config()?;
                log_to_stderr::<S>(&config);
                Ok(config)
            };
            return S::command(command, &config).await;
        }
        Command::Shared(shared) => shared,
    };
    match shared {
        Shared::Serve | Shared::Run(_) => {
            let config = load_config()?;
            tessera_http::init_logging(config.log())
                .map_err(|e| Error::config(prefix, "log_level", e.to_string()))?;
            let selection = match shared {
                Shared::Run(parts) => parts,
                _ => Parts::ALL,
            };
            run::<S>(config, selection).await
        }
        Shared::MigrateDb => {
            let config = load_config()?;
            log_to_stderr::<S>(&config);
            S::migrate(config).await
        }
        Shared::ConfigExample => {
            let header = format!(
                "{} configuration (defaults).\nRequired keys are commented out.",
                S::INFO.about
            );
            let yaml = tessera_config::example_yaml::<S::Config>(&header).map_err(Error::Load)?;
            Ok(print(&yaml)?)
        }
        Shared::ConfigCheck => {
            let config = load_config()?;
            let yaml = serde_json::to_value(&config)
                .map_err(|e| Error::Usage(format!("cannot show the config: {e}")))?;
            let text = serde_json::to_string_pretty(&yaml)
                .map_err(|e| Error::Usage(format!("cannot show the config: {e}")))?;
            Ok(print(&format!("{text}\n"))?)
        }
    }
}

/// Prints `err` and its causes on stderr, one per line.
pub fn report(err: &(dyn std::error::Error + 'static)) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = writeln!(stderr, "  caused by: {cause}");
        source = cause.source();
    }
}

/// The `main` of service `S`'s binary: parse, run on a multi-threaded runtime, report a
/// failure with its causes, and exit 0, 1 or 2.
pub fn main<S: Service>() -> ExitCode {
    let (command, file) = match parse_with_config::<S>(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute_with::<S>(command, file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
