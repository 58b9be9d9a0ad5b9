//! Latency samples, percentiles, and the interleaved A/B measurement every figure uses.

/// Latencies of one operation, in nanoseconds.
pub struct Samples {
    pub name: String,
    ns: Vec<u64>,
}

impl Samples {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ns: Vec::new(),
        }
    }

    pub fn push(&mut self, ns: u64) {
        self.ns.push(ns);
    }

    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// The `q` quantile (0..=1) in microseconds (nearest rank).
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.ns.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.ns.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / 1000.0
    }

    pub fn median_us(&self) -> f64 {
        self.quantile_us(0.5)
    }
}

/// The rows of the per-operation table of one backend pass.
#[derive(Default)]
pub struct Table {
    rows: Vec<(String, usize, f64, f64, f64)>,
}

impl Table {
    pub fn add(&mut self, samples: &Samples) {
        self.rows.push((
            samples.name.clone(),
            samples.len(),
            samples.quantile_us(0.5),
            samples.quantile_us(0.9),
            samples.quantile_us(0.99),
        ));
    }

    pub fn print(&self, title: &str) {
        println!();
        println!("{title} (latency per call, microseconds)");
        println!(
            "{:<44} {:>7} {:>10} {:>10} {:>10}",
            "operation", "samples", "p50", "p90", "p99"
        );
        for (name, n, p50, p90, p99) in &self.rows {
            println!("{name:<44} {n:>7} {p50:>10.1} {p90:>10.1} {p99:>10.1}");
        }
    }
}

/// How many samples a pair gets: `rounds` rounds of `per_round` calls of A, then of B.
#[derive(Clone, Copy)]
pub struct Plan {
    pub warmup: usize,
    pub rounds: usize,
    pub per_round: usize,
}

/// Measures A and B interleaved: after `warmup` calls of each, `rounds` rounds of
/// `per_round` timed calls of A followed by `per_round` of B, so that drift (other load,
/// CPU frequency, server state) hits both alike. `i` counts the calls of each side; each
/// side is an expression giving a future, evaluated anew for every call.
///
/// A macro rather than a function over closures: futures that borrow from async closures
/// do not (yet) prove `Send` for `tokio::spawn`.
macro_rules! pair {
    ($plan:expr, $a:expr, |$ia:ident| $run_a:expr, $b:expr, |$ib:ident| $run_b:expr $(,)?) => {{
        let plan: $crate::measure::Plan = $plan;
        let (a, b): (&mut $crate::measure::Samples, &mut $crate::measure::Samples) = ($a, $b);
        for $ia in 0..plan.warmup {
            $run_a.await;
            let $ib = $ia;
            $run_b.await;
        }
        let mut base = plan.warmup;
        for _ in 0..plan.rounds {
            for k in 0..plan.per_round {
                let $ia = base + k;
                let start = std::time::Instant::now();
                $run_a.await;
                a.push(start.elapsed().as_nanos() as u64);
            }
            for k in 0..plan.per_round {
                let $ib = base + k;
                let start = std::time::Instant::now();
                $run_b.await;
                b.push(start.elapsed().as_nanos() as u64);
            }
            base += plan.per_round;
        }
    }};
}
pub(crate) use pair;

/// `a`'s median over `b`'s.
pub fn ratio(a: &Samples, b: &Samples) -> f64 {
    a.median_us() / b.median_us()
}
