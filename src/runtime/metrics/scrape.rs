//! The exposition as a scraper reads it: one counter sample by name and
//! labels, parsed back from [`Metrics::render`]'s text. For tests, which
//! check what Prometheus would see; the runtime itself reads the typed
//! handles (`read.rs`) and never parses its own output.

use std::borrow::Cow;

use super::Metrics;

impl Metrics {
    /// The value of one counter sample as [`render`](Self::render) shows
    /// it, for tests. `name` is the exposition name, with
    /// `_total` (`l3map_api_429_total`); `labels` must be the sample's
    /// whole label set, in any order. A series not in the exposition
    /// (a label value nobody used) reads 0, which is what it counts.
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort_unstable();
        let text = self.render();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(parse_sample)
            .find(|sample| {
                let mut got: Vec<(&str, &str)> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, v.as_ref()))
                    .collect();
                got.sort_unstable();
                sample.name == name && got == want
            })
            .and_then(|sample| sample.value.parse().ok())
            .unwrap_or(0)
    }

    /// The sum of a counter's samples whose labels include `labels` (the
    /// others free): `l3map_api_errors_total` of one connection, all kinds.
    pub fn counter_sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let text = self.render();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(parse_sample)
            .filter(|sample| {
                sample.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .filter_map(|sample| sample.value.parse::<u64>().ok())
            .sum()
    }
}

pub(super) struct Sample<'a> {
    pub(super) name: &'a str,
    pub(super) labels: Vec<(&'a str, Cow<'a, str>)>,
    pub(super) value: &'a str,
}

/// One sample line: `name{k="v",...} value [# exemplar]`.
pub(super) fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            inner = inner.strip_prefix(',').unwrap_or(inner);
            let eq = inner.find('=')?;
            let key = &inner[..eq];
            let quoted = inner[eq + 1..].strip_prefix('"')?;
            let (value, after) = unquote(quoted)?;
            labels.push((key, value));
            inner = after;
        }
    }
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The label value up to its closing quote, unescaped, and what follows.
fn unquote(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut escaped = false;
    let mut needs_unescape = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => {
                escaped = true;
                needs_unescape = true;
            }
            '"' => {
                let raw = &s[..i];
                let value = if needs_unescape {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                };
                return Some((value, &s[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
