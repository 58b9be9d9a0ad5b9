//! P10: throughput of many tasks reading at once, the repository against the bare client.

use std::future::Future;
use std::time::Instant;

use crate::measure::Samples;

/// How a throughput pair runs: `rounds` rounds (after one of warm-up) of A then B, each
/// round `tasks` concurrent tasks doing `ops_per_task` operations.
#[derive(Clone, Copy)]
pub struct Load {
    pub tasks: usize,
    pub ops_per_task: usize,
    pub rounds: usize,
}

/// Measures A and B interleaved by rounds; each sample is one round's wall time, so the
/// ratio of B's median to A's is A's throughput over B's. `op(task, k)` is the `k`-th
/// operation of task `task`.
pub async fn pair<A, FA, B, FB>(load: Load, a: &mut Samples, op_a: A, b: &mut Samples, op_b: B)
where
    A: Fn(usize, usize) -> FA + Clone + Send + 'static,
    FA: Future<Output = ()> + Send + 'static,
    B: Fn(usize, usize) -> FB + Clone + Send + 'static,
    FB: Future<Output = ()> + Send + 'static,
{
    for round in 0..=load.rounds {
        let ns_a = once(load, op_a.clone()).await;
        let ns_b = once(load, op_b.clone()).await;
        if round > 0 {
            a.push(ns_a);
            b.push(ns_b);
        }
    }
}

/// One round: spawns the tasks, waits for all; the wall time in nanoseconds.
async fn once<F, Fut>(load: Load, op: F) -> u64
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..load.tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                for k in 0..load.ops_per_task {
                    op(task, k).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("throughput task");
    }
    start.elapsed().as_nanos() as u64
}

/// Operations per second of one round of `load` that took the median of `samples`.
pub fn ops_per_second(load: Load, samples: &Samples) -> f64 {
    (load.tasks * load.ops_per_task) as f64 / (samples.median_us() / 1e6)
}
