//! P7: how long `autocache_codegen::Config::generate` takes on a 200-model schema and on the
//! repository's schema.yaml.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A schema of `models` models: each has a string, an integer, a boolean and a datetime
/// field, a foreign key to an earlier model (cascade or set-null alternately), every fifth
/// a many-to-many to another earlier model, every seventh a unique field and an ordering.
pub fn big_schema(models: usize) -> String {
    let mut yaml = String::from("namespace: big\ndatabase: sqlite\nmodels:\n");
    for i in 0..models {
        let _ = writeln!(yaml, "  Model{i}:");
        if i % 3 == 1 {
            let _ = writeln!(yaml, "    backend: other");
        }
        if i % 7 == 0 {
            let _ = writeln!(yaml, "    ordering: [-rank, title]");
        }
        let _ = writeln!(yaml, "    fields:");
        let _ = writeln!(yaml, "      title: {{ type: string, max_length: 64 }}");
        let _ = writeln!(yaml, "      rank: {{ type: integer }}");
        let _ = writeln!(yaml, "      active: {{ type: boolean, default: true }}");
        let _ = writeln!(yaml, "      created: {{ type: datetime }}");
        if i % 7 == 0 {
            let _ = writeln!(yaml, "      slug: {{ type: string, max_length: 32, unique: true }}");
        }
        if i > 0 {
            let parent = (i * 7 + 3) % i;
            if i % 2 == 0 {
                let _ = writeln!(
                    yaml,
                    "      parent: {{ type: foreign_key, to: Model{parent}, related_name: children_{i}, on_delete: cascade }}"
                );
            } else {
                let _ = writeln!(
                    yaml,
                    "      parent: {{ type: foreign_key, to: Model{parent}, related_name: children_{i}, on_delete: set_null, null: true }}"
                );
            }
        }
        if i > 1 && i % 5 == 0 {
            let other = (i * 13 + 1) % i;
            let _ = writeln!(
                yaml,
                "      tags: {{ type: many_to_many, to: Model{other}, related_name: tagged_{i} }}"
            );
        }
    }
    yaml
}

/// The median wall time, in milliseconds, of `runs` generations of the schema at `path`
/// (and the size of the generated code, to show the work was done).
pub fn time_generate(path: &Path, runs: usize) -> (f64, usize) {
    let config = autocache_codegen::Config::new();
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let files = config
            .generate(path)
            .unwrap_or_else(|error| panic!("generate {}: {error}", path.display()));
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        bytes = files.values().map(String::len).sum();
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], bytes)
}

/// Writes the 200-model schema to a temporary file (removed on drop).
pub struct TempSchema(pub PathBuf);

impl TempSchema {
    pub fn write(models: usize) -> TempSchema {
        let path = std::env::temp_dir().join(format!("autocache-bench-{}-big.yaml", std::process::id()));
        std::fs::write(&path, big_schema(models)).expect("write the 200-model schema");
        TempSchema(path)
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where the time of one generation goes: (load, plan, render, format) in milliseconds, the
/// median of `runs` each.
pub fn phases(path: &Path, runs: usize) -> [f64; 4] {
    let source = std::fs::read_to_string(path).expect("read the schema");
    let name = path.display().to_string();
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..runs {
        let start = Instant::now();
        let schema = autocache_codegen::validate::load(&source, &name).expect("valid schema");
        times[0].push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let plans = autocache_codegen::plan::plan(&schema);
        times[1].push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let rendered = autocache_codegen::render::render(&schema, &plans).expect("render");
        times[2].push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let formatted = autocache_codegen::format::format(&rendered, &name).expect("format");
        times[3].push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(formatted);
    }
    times.map(|mut phase| {
        phase.sort_by(f64::total_cmp);
        phase[phase.len() / 2]
    })
}
