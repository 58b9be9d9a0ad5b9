//! tracing spans around every repository call: `autocache` spans with the model, the
//! operation, the named backend, and (for reads) how many keys hit and missed. Subscribers
//! measure their duration (e.g. `tracing_subscriber::fmt().with_span_events(FmtSpan::CLOSE)`).

use tracing::Span;
use tracing::field::Empty;

use crate::model::ModelInfo;

/// The span of one repository call; a disabled span when no subscriber wants it (then
/// not even `tracing`'s `log` fallback, which sqlx turns on, is paid for on every call).
pub(crate) fn call(model: &ModelInfo, op: &'static str) -> Span {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return Span::none();
    }
    tracing::debug_span!(
        "autocache",
        model = model.name,
        op,
        backend = model.backend,
        hits = Empty,
        misses = Empty
    )
}

/// Records a read's hits and misses on the current span.
pub(crate) fn record_lookups(hits: u64, misses: u64) {
    let span = Span::current();
    span.record("hits", hits);
    span.record("misses", misses);
}
