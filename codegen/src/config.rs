//! The library entry point, in the style of prost-build: a [`Config`] builder that
//! `build.rs` and the CLI both use, so both produce byte-identical files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::SchemaErrors;
use crate::ir::{Dialect, Schema};
use crate::lock::{self, LockError};
use crate::{format, plan, render, validate, write};

/// Anything that stops generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema is invalid; every problem is listed with file:line:col.
    #[error("{0}")]
    Schema(#[from] SchemaErrors),
    /// A template produced something unexpected (a bug in autocache-codegen).
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// The rendered code does not parse (a bug in autocache-codegen).
    #[error(transparent)]
    Format(#[from] format::FormatError),
    /// Reading the schema or writing output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The schema's lock file cannot be read.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `compile` was called outside a build script and without `out_dir`.
    #[error("no output directory: call Config::out_dir or run from build.rs (OUT_DIR unset)")]
    NoOutDir,
}

/// Configures and runs code generation.
#[derive(Clone, Debug, Default)]
pub struct Config {
    out_dir: Option<PathBuf>,
    dialect: Option<Dialect>,
    remove_stale: bool,
    lock: LockFile,
}

/// Where the retired digests come from.
#[derive(Clone, Debug, Default)]
enum LockFile {
    /// The lock file next to the schema ([`lock::path_for`]).
    #[default]
    NextToSchema,
    /// This file.
    At(PathBuf),
    /// None: no key of an earlier version is evicted.
    Ignored,
}

impl Config {
    /// A configuration with defaults: output to `OUT_DIR`, the schema's own dialect.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes into `dir` instead of `OUT_DIR`.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Generates for `dialect` whatever the schema's `database:` says.
    pub fn dialect(&mut self, dialect: Dialect) -> &mut Self {
        self.dialect = Some(dialect);
        self
    }

    /// Also removes generated files in the output directory that this run did not produce
    /// (the CLI's `generate`, for a committed directory). Off by default, so several
    /// `compile` calls in one `build.rs` share `OUT_DIR` without deleting each other's output.
    pub fn remove_stale(&mut self, remove: bool) -> &mut Self {
        self.remove_stale = remove;
        self
    }

    /// Reads retired digests from the lock file at `path` (`None`: from none, so writes
    /// evict only the current version's keys) instead of the one next to the schema.
    pub fn lock_file(&mut self, path: Option<impl Into<PathBuf>>) -> &mut Self {
        self.lock = path.map_or(LockFile::Ignored, |path| LockFile::At(path.into()));
        self
    }

    /// The lock file this configuration reads for the schema at `schema`, if any.
    pub fn lock_path(&self, schema: &Path) -> Option<PathBuf> {
        match &self.lock {
            LockFile::NextToSchema => Some(lock::path_for(schema)),
            LockFile::At(path) => Some(path.clone()),
            LockFile::Ignored => None,
        }
    }

    /// Reads and validates the schema at `path`, with its models' retired digests from the
    /// lock file.
    pub fn load(&self, path: &Path) -> Result<Schema, Error> {
        Ok(self.load_named(path)?.0)
    }

    /// [`Config::load`], and the name of the schema's generated file: `<namespace>.rs`, or
    /// `<namespace>_<dialect>.rs` (`sample_postgres.rs`) when [`Config::dialect`] is another
    /// than the schema's `database:`, so one schema generated for several databases fills one
    /// directory without one file replacing another.
    pub fn load_named(&self, path: &Path) -> Result<(Schema, String), Error> {
        let source = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut schema = validate::load_bytes(&source, &path.display().to_string())?;
        let name = match self.dialect {
            Some(dialect) if dialect != schema.dialect => format!("{}_{}.rs", schema.namespace, dialect.name()),
            _ => format!("{}.rs", schema.namespace),
        };
        if let Some(dialect) = self.dialect {
            schema.dialect = dialect;
        }
        if let Some(lock_path) = self.lock_path(path) {
            lock::read(&lock_path)?.apply(&mut schema);
        }
        Ok((schema, name))
    }

    /// The files generated for the schema at `path`, by name (see [`Config::load_named`]).
    pub fn generate(&self, path: &Path) -> Result<BTreeMap<String, String>, Error> {
        let (schema, name) = self.load_named(path)?;
        let plans = plan::plan(&schema);
        let source = render::render(&schema, &plans)?;
        let schema_name = path
            .file_name()
            .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let formatted = format::format(&source, &schema_name)?;
        Ok(BTreeMap::from([(name, formatted)]))
    }

    /// Generates and writes the files of one schema (see [`Config::compile_all`]).
    pub fn compile(&self, path: impl AsRef<Path>) -> Result<write::WriteReport, Error> {
        self.compile_all(&[path])
    }

    /// Generates and writes the files of every schema, in one directory; from `build.rs`
    /// (with or without [`Config::out_dir`]), also tells cargo to rerun when a schema
    /// changes. Include each result with
    /// `include!(concat!(env!("OUT_DIR"), "/<namespace>.rs"))`.
    pub fn compile_all(&self, paths: &[impl AsRef<Path>]) -> Result<write::WriteReport, Error> {
        let build_script_out = std::env::var_os("OUT_DIR").map(PathBuf::from);
        if build_script_out.is_some() {
            for path in paths {
                println!("cargo:rerun-if-changed={}", path.as_ref().display());
                // Only an existing one: cargo reruns a build script on every build while a
                // path it watches is missing. A lock file that appears later records the
                // current digests only (the schema's own change reruns the script).
                if let Some(lock_path) = self.lock_path(path.as_ref()).filter(|lock| lock.exists()) {
                    println!("cargo:rerun-if-changed={}", lock_path.display());
                }
            }
        }
        let out_dir = self.out_dir.clone().or(build_script_out).ok_or(Error::NoOutDir)?;
        let mut files = BTreeMap::new();
        for path in paths {
            files.extend(self.generate(path.as_ref())?);
        }
        write::write(&out_dir, &files, self.remove_stale).map_err(|source| Error::Io { path: out_dir, source })
    }
}

/// Generates one schema into `OUT_DIR` with the default configuration (for `build.rs`).
pub fn compile(path: impl AsRef<Path>) -> Result<write::WriteReport, Error> {
    Config::new().compile(path)
}
