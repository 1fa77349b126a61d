//! The logs of `l3map run` and `l3map emulate`, on stderr: human lines, or
//! one flat JSON object per line.
//!
//! - Colour (ANSI escapes) only when stderr is a terminal and `NO_COLOR`
//!   is not set: a log file or a collector reads plain text.
//! - JSON: `timestamp`, `level`, `target`, `message`, then the event's
//!   fields as top-level keys (not under `fields` or `span`), with
//!   numbers and booleans as JSON numbers and booleans, and a value logged
//!   through [`LogJson`] (a list of objects or files) as its JSON value.
//!   Anything else logged with `%` or `?` is a string. The runtime opens
//!   no spans, so there is nothing to nest.
//! - Human: every field value (and the message) has its control
//!   characters escaped (`\n`, `\u{1b}`, ...), and the Unicode line
//!   separators and bidi controls too: a value from a vendor (a ticket
//!   form's name, a reason quoting it) cannot start a forged log line or
//!   send escapes to a terminal. One event is one line.

use crate::runtime::config::LogFormat;
use serde_json::Value;
use std::cell::Cell;
use std::fmt;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether human logs may carry colour: stderr is a terminal and
/// `NO_COLOR` (<https://no-color.org>) is unset.
pub fn colour() -> bool {
    colour_for(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").is_some(),
    )
}

fn colour_for(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

/// Installs the process's log subscriber: `RUST_LOG` if set and valid,
/// else `level`, else `info`. A second call (tests run several runtimes
/// in one process) keeps the first.
pub fn init(format: LogFormat, level: &str) {
    // The MCP SDK logs each client's `initialize` whole at INFO: a client
    // could fill the disk with it. Its warnings and errors stay; a
    // RUST_LOG that names `rmcp` still decides.
    let quiet = |f: tracing_subscriber::EnvFilter| match "rmcp=warn".parse() {
        Ok(d) => f.add_directive(d),
        Err(_) => f,
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if v.contains("rmcp") => tracing_subscriber::EnvFilter::try_new(v).ok(),
        _ => None,
    }
    .or_else(|| {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
            .ok()
            .map(quiet)
    })
    .unwrap_or_else(|| quiet(tracing_subscriber::EnvFilter::new("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.with_ansi(false).event_format(FlatJson).try_init(),
        LogFormat::Human => builder
            .with_ansi(colour())
            .fmt_fields(HumanFields)
            .try_init(),
    };
}

/// The human format's fields: `message` then `name=value`, each value
/// [`escaped`] (the default formatter writes `%` values and the message raw).
pub struct HumanFields;

impl<'w> FormatFields<'w> for HumanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = HumanVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct HumanVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for HumanVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let text = format!("{value:?}");
        let text = escaped(&text);
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = match field.name() {
            "message" => write!(self.writer, "{sep}{text}"),
            name => write!(self.writer, "{sep}{name}={text}"),
        };
    }
}

/// `text` with its control characters, Unicode line separators and bidi
/// controls written as escapes, so it stays on one line and inert.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A log field value shown as JSON: `files = ?LogJson(&paths)` is a JSON
/// array in JSON logs and `["a.l3map","b.l3map"]` in human ones, where
/// `?paths` would be the Rust `Debug` text of the list as a string.
pub struct LogJson<T>(pub T);

thread_local! {
    /// Set by [`LogJson`] while [`Fields`] formats a value: the text is
    /// JSON to embed, not a string. Only our formatter reads it, so a
    /// `Display` that happens to look like JSON stays a string.
    static WROTE_JSON: Cell<bool> = const { Cell::new(false) };
}

impl<T: serde::Serialize + fmt::Debug> fmt::Debug for LogJson<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(&self.0) {
            Ok(text) => {
                WROTE_JSON.with(|w| w.set(true));
                f.write_str(&text)
            }
            // Not representable (a path that is not UTF-8): its Debug text.
            Err(_) => self.0.fmt(f),
        }
    }
}

/// The JSON event format.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Built by hand, not as a map: the key order is fixed (ours, then
        // the event's in the order it names them) whatever serde_json's
        // features in the build.
        let mut line = String::with_capacity(256);
        let mut put = |key: &str, value: &Value| {
            line.push(if line.is_empty() { '{' } else { ',' });
            line.push_str(&Value::from(key).to_string());
            line.push(':');
            line.push_str(&value.to_string());
        };
        put(
            "timestamp",
            &Value::String(jiff::Timestamp::now().to_string()),
        );
        put("level", &Value::String(meta.level().to_string()));
        put("target", &Value::String(meta.target().to_owned()));
        if let Some(message) = &fields.message {
            put("message", message);
        }
        for (key, value) in &fields.rest {
            put(key, value);
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// An event's fields as JSON values, to go at the top level.
#[derive(Default)]
struct Fields {
    message: Option<Value>,
    rest: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(value);
            return;
        }
        // A field named like one of ours keeps both: ours first.
        let key = if matches!(name, "timestamp" | "level" | "target") {
            format!("field_{name}")
        } else {
            name.to_owned()
        };
        self.rest.push((key, value));
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.put(field, v);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let v = i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.put(field, v);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let v = u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.put(field, v);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        WROTE_JSON.with(|w| w.set(false));
        let text = format!("{value:?}");
        let json = WROTE_JSON.with(|w| w.replace(false));
        let v = if json {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        self.put(field, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_for(true, false));
        assert!(!colour_for(false, false));
        assert!(!colour_for(true, true));
        assert!(!colour_for(false, true));
    }

    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON line `log` writes.
    fn json_line(log: impl FnOnce()) -> (String, Value) {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (text, v)
    }

    /// A value from a vendor (a form name in a refusal's reason) cannot
    /// forge a second human log line nor send a terminal escape.
    #[test]
    fn human_values_cannot_forge_lines_or_escapes() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .fmt_fields(HumanFields)
            .finish();
        let evil = "Evil\n2026-12-06T22:00:00.000000Z ERROR l3map::forged: fake line\u{1b}[31mRED\u{2028}x\u{202E}";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(reason = %evil, form = evil, "refused: not offered on ticket form \"{evil}\"");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{2028}') && !text.contains('\u{202E}'),
            "{text}"
        );
        // The message: the form name, escaped, on the event's own line.
        assert!(
            text.contains("ticket form \"Evil\\n2026-12-06T22:00:00.000000Z ERROR l3map::forged"),
            "{text}"
        );
        assert!(text.contains("\\u{1b}[31mRED"), "{text}");
        // A `?` value is Debug-quoted (escaped already), a `%` value escaped.
        assert!(text.contains("form=\"Evil\\n2026"), "{text}");
        assert!(text.contains("reason=Evil\\n2026"), "{text}");
    }

    #[test]
    fn json_fields_are_flat_and_typed() {
        let (text, v) = json_line(|| {
            let files = vec!["a.l3map", "b\"c.l3map"];
            tracing::info!(
                connection = "desk",
                files = ?LogJson(&files),
                debug_list = ?files,
                looks_like_json = %"[1, 2]",
                n = 3u64,
                neg = -2i64,
                ratio = 0.5,
                ok = true,
                level = "mine",
                "something happened"
            );
        });
        assert_eq!(v["message"], "something happened");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["field_level"], "mine");
        assert_eq!(v["connection"], "desk");
        assert_eq!(v["files"], serde_json::json!(["a.l3map", "b\"c.l3map"]));
        // Only LogJson embeds JSON: a Debug list or a Display that looks
        // like JSON stays a string, so a field never changes type.
        assert_eq!(v["debug_list"], "[\"a.l3map\", \"b\\\"c.l3map\"]");
        assert_eq!(v["looks_like_json"], "[1, 2]");
        assert_eq!(v["n"], 3);
        assert_eq!(v["neg"], -2);
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["ok"], true);
        assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(v.get("fields").is_none() && v.get("span").is_none());
        // Ours first, in this order, then the event's own.
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
        assert!(at("level") < at("target") && at("target") < at("message"));
        assert!(at("message") < at("connection") && at("connection") < at("files"));
    }
}
