//! The `strata` command: run the server, initialise a data folder, and
//! manage bots, keys and vector collections on a running server.

mod client;
mod collections;
mod files;
mod kb;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use strata::lock::DataDirLock;
use strata::{AdminKeyStatus, Config, ConfigBuilder, Strata};

/// Strata — storage for conversational AI: users, sessions, conversations,
/// bot configuration, key-value data and vectors behind one HTTP API.
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true)]
struct Cli {
    /// Configuration file (default: ./strata.toml when it exists; also STRATA_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (embedded default: one data folder, nothing else to install).
    Serve {
        /// Data folder (overrides STRATA_DATA_DIR; default ./data).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Address to bind (overrides STRATA_LISTEN; default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create the data folder and print a new global admin key (shown once).
    Init {
        /// Data folder (overrides STRATA_DATA_DIR; default ./data).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Manage bots on a running server (needs the global admin key).
    Bot {
        #[command(flatten)]
        server: client::ServerArgs,
        #[command(subcommand)]
        action: BotAction,
    },
    /// Manage a bot's API keys on a running server.
    Key {
        #[command(flatten)]
        server: client::ServerArgs,
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Manage a bot's vector collections on a running server: create, list,
    /// export and import.
    Collection {
        #[command(flatten)]
        server: client::ServerArgs,
        #[command(subcommand)]
        action: CollectionAction,
    },
    /// A bot's files (the drive) on a running server: put, get, ls, rm.
    Files {
        #[command(flatten)]
        server: client::ServerArgs,
        #[command(subcommand)]
        action: FilesAction,
    },
    /// A bot's knowledge base on a running server: ingest a folder, status, search.
    Kb {
        #[command(flatten)]
        server: client::ServerArgs,
        #[command(subcommand)]
        action: KbAction,
    },
}

#[derive(Debug, Subcommand)]
enum FilesAction {
    /// Upload a local file (streamed) as a new version of KEY (default: the
    /// file's name).
    Put {
        bot: String,
        file: PathBuf,
        /// The file's key in the drive (default: the local file's name).
        #[arg(value_name = "KEY")]
        file_key: Option<String>,
        /// Content type (default: guessed from the file's extension).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Download a file (streamed) to --out or stdout.
    #[command(disable_version_flag = true)]
    Get {
        bot: String,
        #[arg(value_name = "KEY")]
        file_key: String,
        /// Write to this file instead of stdout (written whole or not at all).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Read this older version.
        #[arg(long)]
        version: Option<i64>,
    },
    /// List current files, optionally under a prefix and rolled up by a delimiter.
    Ls {
        bot: String,
        #[arg(long)]
        prefix: Option<String>,
        /// e.g. / to list one folder level.
        #[arg(long)]
        delimiter: Option<String>,
    },
    /// Delete a file's current version.
    Rm {
        bot: String,
        #[arg(value_name = "KEY")]
        file_key: String,
    },
}

#[derive(Debug, Subcommand)]
enum KbAction {
    /// Upload every file under FOLDER to <bot>.gbai/<bot>.gbkb/<relative path>
    /// and wait until each is indexed or failed (with a progress bar).
    Ingest {
        bot: String,
        folder: PathBuf,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Every document of the bot with its indexing status.
    Status { bot: String },
    /// Search the bot's knowledge base.
    Search {
        bot: String,
        query: String,
        /// hybrid, dense or keyword.
        #[arg(long, default_value = "hybrid")]
        mode: String,
        /// How many results.
        #[arg(long, default_value_t = 5)]
        k: usize,
    },
}

#[derive(Debug, Subcommand)]
enum CollectionAction {
    /// Create a collection (needs the bot's admin key or the global admin key).
    Create {
        /// The bot.
        bot: String,
        /// Collection name: 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit.
        name: String,
        /// Vector dimension, 1 to 4096 (fixed at creation).
        #[arg(long)]
        dimension: usize,
        /// cosine, dot or euclidean (fixed at creation).
        #[arg(long, default_value = "cosine")]
        metric: String,
        /// How the in-memory index stores vectors: none, f16 or i8.
        #[arg(long)]
        quantization: Option<String>,
    },
    /// List a bot's collections with their point counts.
    List { bot: String },
    /// Export a collection as NDJSON (a header line, then one line per point),
    /// streamed to stdout or to a file.
    Export {
        bot: String,
        name: String,
        /// Write to this file instead of stdout (written whole or not at all).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import an export (a file, or - for stdin) into a collection, creating
    /// it from the export's header when it does not exist.
    Import {
        bot: String,
        /// The NDJSON export, or - to read stdin.
        #[arg(value_name = "FILE|-")]
        file: String,
        /// The collection to import into (default: the name in the export's header).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BotAction {
    /// Create a bot.
    Create {
        /// Bot id: 1-63 of a-z, 0-9, '_' and '-', starting with a letter or digit.
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
    },
    /// List bots.
    List,
    /// Delete a bot and ALL of its data.
    Delete {
        id: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Create a key for a bot; the key is printed once.
    Create {
        /// The bot.
        bot: String,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// admin (everything in the bot), writer (read and write data) or reader.
        #[arg(long, default_value = "writer")]
        role: String,
    },
    /// List a bot's keys (never their secrets).
    List { bot: String },
    /// Revoke a key; it stops working at once.
    Revoke { bot: String, key_id: String },
}

fn load_config(
    file: Option<&PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
) -> Result<Config> {
    let env = std::env::vars()
        .filter(|(k, _)| k.starts_with("STRATA_"))
        .collect();
    let mut b = ConfigBuilder::from_sources(file.map(|p| p.as_path()), &env)
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    if let Some(d) = data_dir {
        b = b.data_dir(d);
    }
    if let Some(l) = listen {
        b = b.listen(l);
    }
    b.build().map_err(|e| anyhow::anyhow!("{}", e.message()))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: a log file or a journal gets plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // Work still running on blocking threads (a large document being
    // chunked by a knowledge-base job that was stopped) is durable and
    // resumes at the next start: exiting does not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { data_dir, listen } => {
            init_tracing();
            serve(load_config(cli.config.as_ref(), data_dir, listen)?).await
        }
        Command::Init { data_dir } => init(load_config(cli.config.as_ref(), data_dir, None)?).await,
        Command::Bot { server, action } => {
            let c = client::Client::new(&server, cli.config.as_ref())?;
            match action {
                BotAction::Create { id, name } => {
                    c.bot_create(&id, name.as_deref().unwrap_or(&id)).await
                }
                BotAction::List => c.bot_list().await,
                BotAction::Delete { id, yes } => {
                    if !yes {
                        bail!("deleting bot {id:?} removes all of its data; add --yes to confirm");
                    }
                    c.bot_delete(&id).await
                }
            }
        }
        Command::Key { server, action } => {
            let c = client::Client::new(&server, cli.config.as_ref())?;
            match action {
                KeyAction::Create { bot, name, role } => c.key_create(&bot, &name, &role).await,
                KeyAction::List { bot } => c.key_list(&bot).await,
                KeyAction::Revoke { bot, key_id } => c.key_revoke(&bot, &key_id).await,
            }
        }
        Command::Collection { server, action } => {
            let c = client::Client::new(&server, cli.config.as_ref())?;
            match action {
                CollectionAction::Create {
                    bot,
                    name,
                    dimension,
                    metric,
                    quantization,
                } => {
                    collections::create(
                        &c,
                        &bot,
                        &name,
                        dimension,
                        &metric,
                        quantization.as_deref(),
                    )
                    .await
                }
                CollectionAction::List { bot } => collections::list(&c, &bot).await,
                CollectionAction::Export { bot, name, out } => {
                    collections::export(&c, &bot, &name, out.as_deref()).await
                }
                CollectionAction::Import { bot, file, name } => {
                    collections::import(&c, &bot, &file, name.as_deref()).await
                }
            }
        }
        Command::Files { server, action } => {
            let c = client::Client::new(&server, cli.config.as_ref())?;
            match action {
                FilesAction::Put {
                    bot,
                    file,
                    file_key,
                    content_type,
                } => {
                    files::put(
                        &c,
                        &bot,
                        &file,
                        file_key.as_deref(),
                        content_type.as_deref(),
                    )
                    .await
                }
                FilesAction::Get {
                    bot,
                    file_key,
                    out,
                    version,
                } => files::get(&c, &bot, &file_key, out.as_deref(), version).await,
                FilesAction::Ls {
                    bot,
                    prefix,
                    delimiter,
                } => files::ls(&c, &bot, prefix.as_deref(), delimiter.as_deref()).await,
                FilesAction::Rm { bot, file_key } => files::rm(&c, &bot, &file_key).await,
            }
        }
        Command::Kb { server, action } => {
            let c = client::Client::new(&server, cli.config.as_ref())?;
            match action {
                KbAction::Ingest {
                    bot,
                    folder,
                    timeout,
                } => kb::ingest(&c, &bot, &folder, Duration::from_secs(timeout)).await,
                KbAction::Status { bot } => kb::status(&c, &bot).await,
                KbAction::Search {
                    bot,
                    query,
                    mode,
                    k,
                } => kb::search(&c, &bot, &query, &mode, k).await,
            }
        }
    }
}

fn print_admin_key(status: &AdminKeyStatus, to_stdout: bool) {
    match status {
        AdminKeyStatus::Generated(key) => {
            let text = format!(
                "A global admin key was generated. It is shown only now; store it safely:\n\n    {key}\n\nUse it as `Authorization: Bearer <key>` or export STRATA_ADMIN_KEY={key}"
            );
            if to_stdout {
                println!("{text}");
            } else {
                eprintln!("{text}");
            }
        }
        AdminKeyStatus::FromConfig => {
            eprintln!("Using the global admin key from STRATA_ADMIN_KEY.")
        }
        AdminKeyStatus::Existing => {}
    }
}

async fn init(config: Config) -> Result<()> {
    let _lock =
        DataDirLock::acquire(&config.data_dir).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let dir = config.data_dir.clone();
    let strata = Strata::open(config)
        .await
        .context("opening the data folder")?;
    let (strata, status) = strata.bootstrap_admin_key().await?;
    if status == AdminKeyStatus::Existing {
        println!(
            "{} is already initialised (its admin key was shown when it was created).",
            dir.display()
        );
    } else {
        println!("Initialised {}.", dir.display());
        print_admin_key(&status, true);
    }
    strata.close().await;
    Ok(())
}

async fn serve(config: Config) -> Result<()> {
    let _lock =
        DataDirLock::acquire(&config.data_dir).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let listen = config.listen;
    let config_qdrant_listen = config.qdrant_listen;
    tracing::info!(?config, "starting strata");
    let strata = Strata::open(config)
        .await
        .context("opening the data folder")?;
    let (strata, status) = strata.bootstrap_admin_key().await?;
    print_admin_key(&status, false);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind STRATA_LISTEN={listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(address = %local, "strata is listening");
    eprintln!("strata listening on http://{local}");
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let qdrant = match config_qdrant_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind STRATA_QDRANT_LISTEN={addr}"))?;
            let local = l.local_addr().context("reading the bound address")?;
            tracing::info!(address = %local, "the Qdrant-compatible API is listening");
            eprintln!("strata Qdrant-compatible API on http://{local}");
            Some(tokio::spawn(strata_server::serve_qdrant(
                strata.clone(),
                l,
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let workers = strata.start_workers(Duration::from_secs(60));
    strata_server::serve(strata.clone(), listener, stopped(stop_rx))
        .await
        .context("serving HTTP")?;
    if let Some(q) = qdrant {
        match q.await {
            Ok(r) => r.context("serving the Qdrant-compatible API")?,
            Err(e) => tracing::warn!(error = %e, "the Qdrant-compatible listener ended abnormally"),
        }
    }
    tracing::info!("stopping: background workers");
    let late = workers.shutdown(Duration::from_secs(3)).await;
    if !late.is_empty() {
        tracing::warn!(workers = ?late, "background workers did not stop in time; their work resumes at the next start");
    }
    strata.close().await;
    tracing::info!("strata stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
