//! Schema errors: one [`SchemaError`] per problem, each a miette [`Diagnostic`] with the
//! source file, a labeled span and a `help` line; [`SchemaErrors`] carries all of them.
//!
//! Every error's plain message (its `Display`) starts with `<file>:<line>:<col>: ` (1-based),
//! so it reads well without miette's graphics too (compilers and editors understand it).

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::parse::Pos;

/// One problem in a schema file.
#[derive(Clone, Debug)]
pub struct SchemaError {
    code: &'static str,
    file: String,
    line: usize,
    column: usize,
    message: String,
    span: SourceSpan,
    label: String,
    secondary: Vec<(SourceSpan, String)>,
    help: Option<String>,
    src: NamedSource<Arc<str>>,
    /// False when the primary span sits on a line too long to show (miette cannot render it).
    snippet: bool,
}

impl SchemaError {
    /// Stable machine-readable code (`schema::unknown_model`).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The file name the schema was loaded from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line of the primary span.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in characters) of the primary span.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The message without the `<file>:<line>:<col>: ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help line, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// Byte offset and length of the primary span.
    pub fn span(&self) -> (usize, usize) {
        (self.span.offset(), self.span.len())
    }

    /// Sets the help line.
    pub fn set_help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label (e.g. "first defined here").
    pub fn add_label(&mut self, pos: Pos, label: impl Into<String>) -> &mut Self {
        let span = clamp_span(self.src.inner(), pos.offset, pos.len);
        if showable(self.src.inner(), span) {
            self.secondary.push((span, shorten(label.into())));
        }
        self
    }

    /// Renders this error with miette's graphical handler (unicode, no colors) at `width`.
    pub fn render(&self, width: usize) -> String {
        render_with(&handler(width), self)
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for SchemaError {}

impl Diagnostic for SchemaError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.snippet { Some(&self.src) } else { None }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if !self.snippet {
            return None;
        }
        let primary = LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.span);
        let secondary = self
            .secondary
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(secondary)))
    }
}

/// All the errors found in one schema file (never empty).
#[derive(Clone, Debug)]
pub struct SchemaErrors {
    errors: Vec<SchemaError>,
}

impl SchemaErrors {
    /// The errors, in source order.
    pub fn errors(&self) -> &[SchemaError] {
        &self.errors
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, SchemaError> {
        self.errors.iter()
    }

    /// Number of errors (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as a vector.
    pub fn into_vec(self) -> Vec<SchemaError> {
        self.errors
    }

    /// Renders every error with miette's graphical handler, one after the other.
    pub fn render_with(&self, handler: &GraphicalReportHandler) -> String {
        let mut out = String::new();
        for error in &self.errors {
            out.push_str(&render_with(handler, error));
        }
        out
    }

    /// Renders every error graphically (unicode, no colors) at `width` columns, followed by a
    /// one-line summary; deterministic, for terminals without color and for snapshots.
    pub fn render(&self, width: usize) -> String {
        let mut out = self.render_with(&handler(width));
        let n = self.errors.len();
        let file = self.errors.first().map(|e| e.file.as_str()).unwrap_or("schema");
        out.push_str(&format!("{file}: {n} error{}\n", if n == 1 { "" } else { "s" }));
        out
    }
}

impl fmt::Display for SchemaErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SchemaErrors {}

impl Diagnostic for SchemaErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.single().and_then(Diagnostic::code)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.single().and_then(Diagnostic::help)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.single().and_then(|e| e.source_code())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.single().and_then(|e| e.labels())
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.errors.len() > 1 {
            Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
        } else {
            None
        }
    }
}

impl SchemaErrors {
    fn single(&self) -> Option<&SchemaError> {
        if self.errors.len() == 1 {
            self.errors.first()
        } else {
            None
        }
    }
}

impl IntoIterator for SchemaErrors {
    type Item = SchemaError;
    type IntoIter = std::vec::IntoIter<SchemaError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a SchemaErrors {
    type Item = &'a SchemaError;
    type IntoIter = std::slice::Iter<'a, SchemaError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Collects errors while a schema is parsed and validated.
#[derive(Debug)]
pub struct Diagnostics {
    file: String,
    src: NamedSource<Arc<str>>,
    errors: Vec<SchemaError>,
}

impl Diagnostics {
    /// A collector for the schema `source` read from `file_name`.
    pub fn new(file_name: &str, source: &str) -> Self {
        Diagnostics {
            file: file_name.to_string(),
            src: NamedSource::new(file_name, Arc::<str>::from(source)).with_language("yaml"),
            errors: Vec::new(),
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        self.src.inner()
    }

    /// Records an error at `pos` and returns it for adding help and secondary labels.
    pub fn error(
        &mut self,
        code: &'static str,
        pos: Pos,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut SchemaError {
        let span = clamp_span(self.src.inner(), pos.offset, pos.len);
        let (line, column) = if pos.line == 0 {
            line_col(self.src.inner(), span.offset())
        } else {
            (pos.line, pos.column)
        };
        self.errors.push(SchemaError {
            code,
            file: self.file.clone(),
            line,
            column,
            message: shorten(message.into()),
            span,
            label: shorten(label.into()),
            secondary: Vec::new(),
            help: None,
            snippet: showable(self.src.inner(), span),
            src: self.src.clone(),
        });
        self.errors.last_mut().expect("just pushed")
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Number of errors recorded so far.
    pub fn count(&self) -> usize {
        self.errors.len()
    }

    /// The errors recorded so far, sorted by position and de-duplicated.
    ///
    /// Call it only after an error was recorded: `SchemaErrors` is never empty otherwise.
    pub fn into_errors(mut self) -> SchemaErrors {
        self.errors.sort_by_key(|e| (e.span.offset(), e.span.len()));
        self.errors.dedup_by(|a, b| a.span == b.span && a.message == b.message);
        SchemaErrors { errors: self.errors }
    }

    /// `Ok(value)` when no error was recorded, else all the errors.
    pub fn finish<T>(self, value: T) -> Result<T, SchemaErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.into_errors())
        }
    }
}

/// The graphical handler used by [`SchemaErrors::render`]: unicode, no colors, no links.
pub fn handler(width: usize) -> GraphicalReportHandler {
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_links(false)
        .with_width(width)
}

fn render_with(handler: &GraphicalReportHandler, diagnostic: &dyn Diagnostic) -> String {
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = format!("{diagnostic}\n");
    }
    out
}

/// Messages and labels longer than this (in characters) are cut, so that a huge name quoted
/// in a message cannot flood a terminal.
pub const MAX_MESSAGE_CHARS: usize = 600;

/// `text`, cut to [`MAX_MESSAGE_CHARS`] characters with a trailing `…` if it is longer.
fn shorten(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Lines longer than this are not shown in reports (the plain `file:line:col` message still
/// locates the error).
pub const MAX_SNIPPET_LINE: usize = 1000;

/// Whether the lines a span touches are short enough to show in a report.
fn showable(source: &str, span: SourceSpan) -> bool {
    let start = source[..span.offset()].rfind('\n').map_or(0, |i| i + 1);
    let end = span.offset() + span.len();
    let end = source[end..].find('\n').map_or(source.len(), |i| end + i);
    source[start..end]
        .split('\n')
        .all(|line| line.len() <= MAX_SNIPPET_LINE)
}

/// A span that lies inside `source` and on character boundaries.
fn clamp_span(source: &str, offset: usize, len: usize) -> SourceSpan {
    let mut start = offset.min(source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = start.saturating_add(len).min(source.len());
    while !source.is_char_boundary(end) {
        end += 1;
    }
    SourceSpan::new(start.into(), end - start)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of a 1-based line and column (in characters), clamped to the source.
pub fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match source[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return source.len(),
        }
    }
    let line_text = &source[start..];
    let line_end = line_text.find('\n').unwrap_or(line_text.len());
    let within = line_text[..line_end]
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line_end, |(i, _)| i);
    start + within
}

/// Edit distance between two strings, over characters: insertions, deletions, substitutions
/// and transpositions of adjacent characters each cost one (optimal string alignment).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: i-2, i-1 and i.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
///
/// Case differences are free; otherwise at most one edit per three characters (at least one).
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let distance = edit_distance(&lower, &candidate.to_lowercase());
        let limit = (word.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// "did you mean `x`?" when a candidate is close, else `fallback`.
pub fn did_you_mean<'a, I>(word: &str, candidates: I, fallback: impl FnOnce() -> Option<String>) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(word, candidates) {
        Some(c) => Some(format!("did you mean `{c}`?")),
        None => fallback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("Persn", "Person"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
        assert_eq!(edit_distance("tabel", "table"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn closest_candidates() {
        let models = ["Book", "Person", "Volume"];
        assert_eq!(closest("Persn", models), Some("Person"));
        assert_eq!(closest("person", models), Some("Person"));
        assert_eq!(closest("Author", models), None);
        assert_eq!(closest("strng", ["string", "text"]), Some("string"));
        assert_eq!(closest("x", ["y"]), Some("y"));
        assert_eq!(closest("tabel", ["table", "ttl"]), Some("table"));
    }

    #[test]
    fn line_columns() {
        let src = "a: 1\nbé: 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 5), (2, 1));
        assert_eq!(line_col(src, 8), (2, 3));
        assert_eq!(offset_of(src, 2, 3), 8);
        assert_eq!(offset_of(src, 9, 1), src.len());
        assert_eq!(offset_of(src, 1, 99), 4);
    }

    #[test]
    fn long_messages_are_cut() {
        let mut diags = Diagnostics::new("t.yaml", "a: 1\n");
        let name = "é".repeat(5000);
        diags.error(
            "schema::test",
            Pos::default(),
            format!("unknown key `{name}`"),
            name.clone(),
        );
        let errors = diags.into_errors();
        let error = &errors.errors()[0];
        assert_eq!(error.message().chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(error.message().ends_with('…'));
        assert!(error.to_string().starts_with("t.yaml:1:1: unknown key `éé"));
    }

    #[test]
    fn clamped_spans() {
        let src = "aé";
        let span = clamp_span(src, 2, 1);
        assert_eq!((span.offset(), span.len()), (1, 2));
        let span = clamp_span(src, 99, 5);
        assert_eq!((span.offset(), span.len()), (3, 0));
    }
}
