//! The `autocache-codegen` command: a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use autocache_codegen::ir::Dialect;
use autocache_codegen::{Config, Error, ddl, lock, migrate, plan, write};
use clap::{Parser, Subcommand, ValueEnum};

/// Generates typed, cached Rust repositories from an autocache schema.
#[derive(Parser)]
#[command(name = "autocache-codegen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the generated code into a directory (only files that changed), after bringing
    /// the schema's lock file (`<schema>.lock`: each model's current and retired key digests)
    /// up to date.
    Generate {
        /// The schema file.
        schema: PathBuf,
        /// The output directory.
        #[arg(long)]
        out: PathBuf,
        /// Generate for this dialect instead of the schema's `database:`.
        #[arg(long)]
        dialect: Option<DialectArg>,
    },
    /// Exits 1 with a unified diff if the directory is not what `generate` would write, or
    /// if the lock file does not record the schema's current digests.
    Check {
        /// The schema file.
        schema: PathBuf,
        /// The directory holding generated code.
        #[arg(long)]
        out: PathBuf,
        /// Generate for this dialect instead of the schema's `database:`.
        #[arg(long)]
        dialect: Option<DialectArg>,
    },
    /// Prints the CREATE TABLE / index / join-table statements of the schema.
    Ddl {
        /// The schema file.
        schema: PathBuf,
        /// The SQL dialect (default: the schema's `database:`).
        #[arg(long)]
        dialect: Option<DialectArg>,
    },
    /// Writes a schema for an existing database (PostgreSQL: its current schema, MySQL /
    /// MariaDB: its database, SQLite: the file), saying on stderr what it cannot express.
    #[cfg(feature = "db")]
    Import {
        /// `postgres://…`, `mysql://…` (or `mariadb://…`) or `sqlite:…`.
        url: String,
        /// Write the schema here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the statements that take a database from one schema version to the next (or
    /// writes them as a `sqlx migrate` file); refuses, with reasons, what would lose data.
    Migrate {
        /// The schema the database was created for.
        old: PathBuf,
        /// The schema to migrate it to.
        new: PathBuf,
        /// The SQL dialect.
        #[arg(long)]
        dialect: DialectArg,
        /// Write `<dir>/<UTC timestamp>_autocache.sql` for `sqlx migrate run` instead of stdout.
        #[arg(long)]
        sqlx_dir: Option<PathBuf>,
    },
    /// Prints each model's cache keys and what every write does to them.
    Explain {
        /// The schema file.
        schema: PathBuf,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DialectArg {
    Sqlite,
    Postgres,
    Mysql,
}

impl From<DialectArg> for Dialect {
    fn from(arg: DialectArg) -> Self {
        match arg {
            DialectArg::Sqlite => Dialect::Sqlite,
            DialectArg::Postgres => Dialect::Postgres,
            DialectArg::Mysql => Dialect::Mysql,
        }
    }
}

fn config(dialect: Option<DialectArg>) -> Config {
    let mut config = Config::new();
    if let Some(dialect) = dialect {
        config.dialect(dialect.into());
    }
    config
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(Error::Schema(errors)) => {
            eprint!("{}", errors.render(100));
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Generate { schema, out, dialect } => {
            let lock_path = lock::path_for(&schema);
            let layouts = Config::new().lock_file(None::<PathBuf>).load(&schema)?;
            if lock::write_updated(&lock_path, &layouts, chrono::Utc::now())? {
                println!("wrote {}", lock_path.display());
            }
            let report = config(dialect).out_dir(&out).remove_stale(true).compile(&schema)?;
            for path in &report.written {
                println!("wrote {}", path.display());
            }
            for path in &report.removed {
                println!("removed {}", path.display());
            }
            if report.written.is_empty() && report.removed.is_empty() {
                println!("{} is up to date", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { schema, out, dialect } => check(&config(dialect), &schema, &out),
        Command::Ddl { schema, dialect } => {
            for statement in ddl::statements(&config(dialect).load(&schema)?) {
                println!("{statement};");
            }
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "db")]
        Command::Import { url, out } => import(&url, out.as_deref()),
        Command::Migrate {
            old,
            new,
            dialect,
            sqlx_dir,
        } => {
            let mut config = Config::new();
            config.lock_file(None::<PathBuf>);
            let (old, new) = (config.load(&old)?, config.load(&new)?);
            let statements = match migrate::migrate(&old, &new, dialect.into()) {
                Ok(statements) => statements,
                Err(refused) => {
                    eprint!("{refused}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let text: String = statements.iter().map(|s| format!("{s};\n")).collect();
            match sqlx_dir {
                Some(dir) => {
                    let name = format!("{}_autocache.sql", chrono::Utc::now().format("%Y%m%d%H%M%S"));
                    let path = dir.join(name);
                    std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::write(&path, text))
                        .map_err(|source| Error::Io {
                            path: path.clone(),
                            source,
                        })?;
                    println!("wrote {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { schema, model } => {
            let schema = Config::new().load(&schema)?;
            let plans = plan::plan(&schema);
            let chosen: Vec<_> = plans
                .iter()
                .filter(|p| model.as_ref().is_none_or(|m| *m == p.model))
                .collect();
            if chosen.is_empty() {
                let known: Vec<_> = plans.iter().map(|p| p.model.as_str()).collect();
                eprintln!(
                    "error: no model `{}`; known: {}",
                    model.unwrap_or_default(),
                    known.join(", ")
                );
                return Ok(ExitCode::FAILURE);
            }
            for plan in chosen {
                print!("{}", plan::explain(plan));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes the schema of the database at `url` to `out` (or stdout), its notes to stderr.
#[cfg(feature = "db")]
fn import(url: &str, out: Option<&Path>) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: PathBuf::from(url),
            source,
        })?;
    let imported = match runtime.block_on(autocache_codegen::import::import(url)) {
        Ok(imported) => imported,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for note in &imported.notes {
        eprintln!("not expressible: {}: {}", note.place, note.message);
    }
    match out {
        Some(path) => {
            std::fs::write(path, &imported.yaml).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
            println!("wrote {}", path.display());
        }
        None => print!("{}", imported.yaml),
    }
    Ok(ExitCode::SUCCESS)
}

/// Compares what would be generated with what is in `out`, printing a unified diff.
fn check(config: &Config, schema: &Path, out: &Path) -> Result<ExitCode, Error> {
    let files = config.generate(schema)?;
    let mut stale = false;
    let lock_path = lock::path_for(schema);
    if !lock::read(&lock_path)?.is_current(&config.load(schema)?) {
        stale = true;
        println!("{} does not record the schema's current digests", lock_path.display());
    }
    for (name, expected) in &files {
        let path = out.join(name);
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != *expected {
            stale = true;
            let diff = similar::TextDiff::from_lines(&actual, expected);
            print!(
                "{}",
                diff.unified_diff()
                    .header(&path.display().to_string(), &format!("{name} (expected)"))
            );
        }
    }
    let removable = write::stale_files(out, &files).map_err(|source| Error::Io {
        path: out.to_owned(),
        source,
    })?;
    for path in &removable {
        stale = true;
        println!("stale generated file: {}", path.display());
    }
    if stale {
        eprintln!(
            "{} is out of date: run `autocache-codegen generate {} --out {}`",
            out.display(),
            schema.display(),
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{} is up to date", out.display());
    Ok(ExitCode::SUCCESS)
}
