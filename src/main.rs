use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use parlor::config::ConfigSource;
use parlor::Config;

mod memory;

/// Parlor: an IRC-compatible community chat server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file, laid over the embedded defaults.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (IP:PORT); repeat for several. Replaces
    /// server.listen.
    #[arg(long, global = true)]
    listen: Vec<String>,
    /// Address to listen on for IRC over TLS (IP:PORT); repeat for
    /// several. Replaces tls.listen.
    #[arg(long, global = true)]
    tls_listen: Vec<String>,
    /// HTTP address to listen on (IP:PORT); repeat for several. Replaces
    /// http.listen; `none` turns the HTTP door off.
    #[arg(long, global = true, value_name = "ADDR")]
    http_listen: Vec<String>,
    /// Data directory. Replaces server.data_dir.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Check a configuration file and exit: 0 if valid, 1 with the reason.
    CheckConfig { file: PathBuf },
    /// Read a password from standard input and print its Argon2 hash, for
    /// `[[oper]] password_hash`.
    Mkpasswd,
    /// Manage accounts in the data directory's database (the server may be
    /// running). Passwords are read from standard input.
    Account {
        #[command(subcommand)]
        action: AccountCommand,
    },
    /// Write a self-signed certificate and key for trying TLS, and say how
    /// to trust it.
    Mkcert {
        /// A name or address the certificate is for; repeat for several.
        /// Default: localhost, 127.0.0.1 and ::1.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Where to write cert.pem and key.pem. Default: the data
        /// directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace files that exist.
        #[arg(long)]
        force: bool,
    },
    /// Read the stored history (the server may be running).
    Logs {
        #[command(subcommand)]
        action: LogsCommand,
    },
    /// Write a consistent copy of the database to FILE, while the server
    /// runs or not (see the README on restoring it).
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum LogsCommand {
    /// Print a channel's history, or two accounts' direct messages
    /// (`alice+bob`), oldest first.
    Export {
        target: String,
        /// From this date or time on (2026-11-23 or 2026-11-23T16:20:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Before this date or time.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Text)]
        format: ExportFormat,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// `[2026-11-23 16:20:00] <alice> hello`
    Text,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account (registration rules for names and passwords apply).
    Create {
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// Set an account's password.
    Passwd { name: String },
    /// Delete an account, its nicks and the channels it founded.
    Delete { name: String },
    /// List every account.
    List,
    /// Show one account.
    Show { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { ref file }) => match Config::from_file(file) {
            Ok(_) => {
                println!("{}: OK", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Mkpasswd) => mkpasswd(),
        Some(Command::Account { ref action }) => account(&cli, action),
        Some(Command::Logs { ref action }) => logs(&cli, action),
        Some(Command::Mkcert {
            ref hosts,
            ref out,
            force,
        }) => mkcert(&cli, hosts, out.as_deref(), force),
        Some(Command::Backup { ref file, force }) => backup(&cli, file, force),
        Some(Command::Serve) | None => serve(cli),
    }
}

/// The file and overrides the command line names; a reload reads them
/// again.
fn config_source(cli: &Cli) -> ConfigSource {
    ConfigSource {
        file: cli.config.clone(),
        listen: cli.listen.clone(),
        tls_listen: cli.tls_listen.clone(),
        http_listen: cli.http_listen.clone(),
        data_dir: cli.data_dir.clone(),
    }
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    config_source(cli).load().map_err(|e| e.to_string())
}

fn serve(cli: Cli) -> ExitCode {
    use std::io::IsTerminal;
    memory::keep_pages_small();
    // Formatted on the connection tasks, written in batches by a thread
    // of its own (see `logging/mod.rs`); flushed when `serve` returns.
    let (log_writer, _flush_logs_on_exit) = parlor::logging::BatchedLog::new(std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(log_writer);
    // Colour for a person watching; plain lines, cheaper to format, for a
    // file or a pipe (see `logging::plain`).
    if std::io::stderr().is_terminal() {
        logs.init();
    } else {
        logs.with_ansi(false)
            .event_format(parlor::logging::plain::PlainLines)
            .init();
    }
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = config.server.runtime_threads(cores);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .on_thread_park(|| {
            // Lines first: a client waits for them, not for the memory.
            parlor::server::flush::flush_on_park();
            memory::give_back_when_idle();
        })
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Read back from the runtime: what it really started.
    let started = runtime.metrics().num_workers();
    tracing::info!(threads = started, cores, "command threads started");
    match runtime.block_on(parlor::run(config, config_source(&cli))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parlor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mkpasswd() -> ExitCode {
    match read_password() {
        Ok(password) => {
            println!("{}", parlor::hash_password(&password));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// One line from standard input, prompted for on a terminal.
fn read_password() -> Result<String, &'static str> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (shown as you type): ");
        let _ = std::io::stderr().flush();
    }
    let mut password = String::new();
    if stdin.lock().read_line(&mut password).is_err() {
        return Err("cannot read the password from standard input");
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("the password is empty");
    }
    Ok(password.to_owned())
}

fn account(cli: &Cli, command: &AccountCommand) -> ExitCode {
    use parlor::admin::AccountAction;
    let config = match load_config(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let password = || read_password().map_err(|e| e.to_owned());
    let action = match command {
        AccountCommand::Create { name, email } => {
            password().map(|password| AccountAction::Create {
                name: name.clone(),
                email: email.clone(),
                password,
            })
        }
        AccountCommand::Passwd { name } => password().map(|password| AccountAction::Passwd {
            name: name.clone(),
            password,
        }),
        AccountCommand::Delete { name } => Ok(AccountAction::Delete { name: name.clone() }),
        AccountCommand::List => Ok(AccountAction::List),
        AccountCommand::Show { name } => Ok(AccountAction::Show { name: name.clone() }),
    };
    let result = action.and_then(|action| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        runtime.block_on(parlor::admin::run(&config, action))
    });
    match result {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("parlor account: {message}");
            ExitCode::FAILURE
        }
    }
}

fn logs(cli: &Cli, command: &LogsCommand) -> ExitCode {
    let LogsCommand::Export {
        target,
        since,
        until,
        format,
    } = command;
    let config = match load_config(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let export = parlor::export::Export {
        target: target.clone(),
        since: since.clone(),
        until: until.clone(),
        format: match format {
            ExportFormat::Text => parlor::export::Format::Text,
            ExportFormat::Jsonl => parlor::export::Format::Jsonl,
        },
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            runtime.block_on(parlor::export::run(&config, export, &mut out))
        });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("parlor logs export: {message}");
            ExitCode::FAILURE
        }
    }
}

fn backup(cli: &Cli, file: &std::path::Path, force: bool) -> ExitCode {
    let config = match load_config(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| {
            let data_dir = &config.server.data_dir;
            runtime
                .block_on(parlor::store::backup::backup(data_dir, file, force))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(bytes) => {
            println!(
                "wrote {} ({bytes} bytes, {:.1} MiB)",
                file.display(),
                bytes as f64 / f64::from(1 << 20)
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("parlor backup: {message}");
            ExitCode::FAILURE
        }
    }
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn mkcert(cli: &Cli, hosts: &[String], out: Option<&std::path::Path>, force: bool) -> ExitCode {
    let hosts = if hosts.is_empty() {
        vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ]
    } else {
        hosts.to_vec()
    };
    let dir = match out {
        Some(dir) => dir.to_owned(),
        None => match load_config(cli) {
            Ok(config) => config.server.data_dir,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match parlor::tls::mkcert::write(&dir, &hosts, force) {
        Ok(written) => {
            print!("{}", written.instructions());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("parlor mkcert: {e}");
            ExitCode::FAILURE
        }
    }
}
