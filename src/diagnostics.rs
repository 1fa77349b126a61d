//! The renderings of a diagnostic ([`Diagnostic`], which the checker
//! makes): human (miette), JSON and GitHub Actions annotations.

mod redact;

pub use crate::check::{DiagKind, Diagnostic};
pub use redact::redact;

use crate::syntax::SourceMap;
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    NamedSource, Severity, SourceSpan, SpanContents,
};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

impl Diagnostic {
    /// Attaches the file's text so miette can draw the snippet, literal
    /// credentials masked ([`redact`]): a frame must never print one.
    pub fn with_source<'a>(&'a self, sources: &SourceMap) -> WithSource<'a> {
        let f = sources.get(self.file);
        let text: Arc<str> = match redact(&f.text) {
            std::borrow::Cow::Borrowed(_) => f.text.clone(),
            std::borrow::Cow::Owned(masked) => masked.into(),
        };
        WithSource {
            diag: self,
            src: NamedSource::new(
                f.path.clone(),
                CharColumns {
                    shown: text,
                    original: f.text.clone(),
                },
            ),
        }
    }
}

/// A file's text for miette, with columns counted in characters (Unicode
/// scalar values), as editors, GitHub and every other output of l3map
/// count them. miette counts the column of its `[file:line:col]` header in
/// bytes: after Thai or Japanese text on the line it would name another
/// column than the JSON and GitHub renderings of the same diagnostic.
struct CharColumns {
    /// What the frame shows: the text with credentials masked (byte for
    /// byte, so spans stay valid).
    shown: Arc<str>,
    /// What columns are counted in: a masked Thai letter became three `*`.
    original: Arc<str>,
}

impl miette::SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .shown
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette gives a column only for a span read without lines before
        // it (the header's); otherwise it is 0 and stays so.
        let column = if context_lines_before == 0 {
            char_column(&self.original, span.offset())
        } else {
            inner.column()
        };
        Ok(Box::new(MietteSpanContents::new(
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// Characters between the start of the line holding byte `offset` and
/// `offset` (0-based). Lines end at `\n` or `\r`, as miette counts them.
fn char_column(text: &str, offset: usize) -> usize {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let start = text[..end].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    text[start..end].chars().count()
}

/// A diagnostic together with its file, ready for miette's handlers.
pub struct WithSource<'a> {
    diag: &'a Diagnostic,
    src: NamedSource<CharColumns>,
}

impl fmt::Debug for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diag, f)
    }
}

impl fmt::Display for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diag.inner(), f)
    }
}

impl std::error::Error for WithSource<'_> {}

impl miette::Diagnostic for WithSource<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.inner().code()
    }
    fn severity(&self) -> Option<Severity> {
        self.diag.inner().severity()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.inner().help()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diag.inner().labels()
    }
}

/// Renders diagnostics the way a person at a terminal reads them.
pub fn render_human(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diags {
        if touches_long_line(d, sources) {
            out.push_str(&render_plain(d, sources));
            continue;
        }
        let ws = d.with_source(sources);
        if handler.render_report(&mut out, &ws).is_err() {
            out.push_str(&render_plain(d, sources));
        }
    }
    out
}

/// Lines this long are not worth drawing (and miette's padding panics past
/// 65,535 columns): such diagnostics are printed without the snippet.
const MAX_DRAWN_COLUMN: usize = 2_000;

fn touches_long_line(d: &Diagnostic, sources: &SourceMap) -> bool {
    let f = sources.get(d.file);
    d.labels().iter().any(|l| {
        let end = (l.offset() + l.len()) as u32;
        f.line_col(end).1 > MAX_DRAWN_COLUMN || f.line_col(l.offset() as u32).1 > MAX_DRAWN_COLUMN
    })
}

fn render_plain(d: &Diagnostic, sources: &SourceMap) -> String {
    let j = to_json(d, sources);
    let mark = if j.severity == "error" { "×" } else { "⚠" };
    let mut s = format!(
        "{}\n  {mark} {}\n    at {}:{}:{}\n",
        j.code, j.message, j.file, j.line, j.column
    );
    if let Some(h) = &j.help {
        s.push_str(&format!("  help: {h}\n"));
    }
    s
}

#[derive(Serialize)]
pub struct JsonLabel {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub message: Option<String>,
}

#[derive(Serialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    pub help: Option<String>,
    pub labels: Vec<JsonLabel>,
}

pub fn to_json(d: &Diagnostic, sources: &SourceMap) -> JsonDiagnostic {
    let f = sources.get(d.file);
    let labels: Vec<JsonLabel> = d
        .labels()
        .iter()
        .map(|l| {
            let (line, column) = f.line_col(l.offset() as u32);
            let (end_line, end_column) = f.line_col((l.offset() + l.len()) as u32);
            JsonLabel {
                line,
                column,
                end_line,
                end_column,
                message: l.label().map(str::to_string),
            }
        })
        .collect();
    let (line, column, end_line, end_column) = labels
        .first()
        .map(|l| (l.line, l.column, l.end_line, l.end_column))
        .unwrap_or((1, 1, 1, 1));
    JsonDiagnostic {
        file: f.path.clone(),
        line,
        column,
        end_line,
        end_column,
        severity: match d.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Advice => "advice",
        },
        code: d.code(),
        message: d.message(),
        help: d.help(),
        labels,
    }
}

/// The message of a GitHub workflow command, escaped as the runner
/// expects (`%`, CR and LF), so a multi-line message stays one command.
pub fn github_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property of a GitHub workflow command (`file=`, `title=`): also `:`
/// and `,`, which would end the property.
pub fn github_prop(s: &str) -> String {
    github_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: one `::error ...::message` line each.
pub fn render_github(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags {
        let j = to_json(d, sources);
        let level = if j.severity == "error" {
            "error"
        } else {
            "warning"
        };
        let mut msg = j.message.clone();
        if let Some(h) = &j.help {
            msg.push_str("\nhelp: ");
            msg.push_str(h);
        }
        out.push_str(&format!(
            "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
            github_prop(&j.file),
            j.line,
            j.column,
            j.end_line,
            j.end_column,
            github_prop(&j.code),
            github_data(&msg)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[file:line:col]` of miette's frame and the JSON rendering name
    /// the same place, counted in characters, on lines with Japanese and
    /// Thai text, and when a masked credential holds a Thai letter.
    #[test]
    fn the_frame_counts_columns_in_characters_like_json() {
        let text = "connection desk: zendesk {\n  subdomain \"acme\"\n  token     \"ลับ\" bogus\n}\n\nescalation e {\n  when turn.intent == \"返金\" and turn.summary == \"คืนเงิน\" and ticket.nope > 1\n  reason \"x\"\n}\n";
        let mut sources = SourceMap::new();
        sources.add("a.l3map", text);
        let checked = crate::compile::check(&sources, None);
        assert!(!checked.diagnostics.is_empty());
        for d in &checked.diagnostics {
            let human = render_human(std::slice::from_ref(d), &sources, false);
            let j = to_json(d, &sources);
            let place = format!("[a.l3map:{}:{}]", j.line, j.column);
            assert!(human.contains(&place), "{place} in\n{human}");
        }
        assert_eq!(char_column("ab\n返金x", "ab\n返金x".len() - 1), 2);
        assert_eq!(char_column("返", 1), 0);
    }
}
