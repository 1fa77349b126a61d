//! The text of `expect comment` blocks and the diffs a failed
//! expectation shows.

/// Raw strings usually start and end with a line break; those do not count.
pub(super) fn trim_blank_lines(s: &str) -> &str {
    let start = s
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(s.len(), |(i, _)| s[..i].rfind('\n').map_or(0, |n| n + 1));
    s[start..].trim_end()
}

/// The text of a triple-quoted `expect comment`: [`dedent`]ed, without
/// the blank lines around it (the line break after the opening quotes and
/// the indentation before the closing ones are layout).
pub fn block_text(raw: &str) -> String {
    trim_blank_lines(&dedent(raw)).to_string()
}

/// The indentation the lines of a `"""` block share is layout (the
/// block sits inside a `test`), not text. Lines
/// holding only spaces and tabs become empty, as in Python's
/// `textwrap.dedent`; a tab and a space are different characters, so only
/// a prefix written the same way on every line is common.
pub fn dedent(text: &str) -> String {
    let blank = |l: &str| l.chars().all(|c| c == ' ' || c == '\t');
    let mut common: Option<&str> = None;
    for line in text.split('\n').filter(|l| !blank(l)) {
        let indent = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
        common = Some(match common {
            None => indent,
            Some(c) => {
                let n = c
                    .bytes()
                    .zip(indent.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                &c[..n]
            }
        });
    }
    let common = common.unwrap_or("");
    text.split('\n')
        .map(|l| if blank(l) { "" } else { &l[common.len()..] })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A line diff: `- ` lines only in `expected`, `+ ` lines only in `actual`.
/// Whitespace a reader cannot see is marked in the changed lines (tabs,
/// carriage returns, no-break spaces, and spaces at either end of a line;
/// every space when the texts differ in nothing else), with a legend.
pub fn line_diff(expected: &str, actual: &str) -> String {
    // Zero-width characters count as whitespace here: a reader cannot
    // see them either.
    let squeeze = |s: &str| {
        s.split_whitespace()
            .flat_map(|w| w.chars().filter(|c| !zero_width(*c)))
            .collect::<String>()
    };
    let only_whitespace = squeeze(expected) == squeeze(actual);
    let diff = similar::TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    let mut marked = false;
    for change in diff.iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        out.push(sign);
        out.push(' ');
        if sign == ' ' {
            out.push_str(line);
        } else {
            let (shown, m) = visible(line, only_whitespace);
            marked |= m;
            out.push_str(&shown);
        }
        out.push('\n');
    }
    if only_whitespace {
        out.push_str("(the comments differ only in whitespace)\n");
    }
    if marked {
        out.push_str("(␠ is a space, → a tab, ␍ a carriage return, ⍽ a no-break space, ⟨U+XXXX⟩ another invisible character)\n");
    }
    out
}

/// `line` with its invisible whitespace marked; `true` if anything was.
pub(super) fn visible(line: &str, every_space: bool) -> (String, bool) {
    let body = line.trim_matches([' ', '\t']);
    let lead = line.len() - line.trim_start_matches([' ', '\t']).len();
    // A line of only spaces is all lead.
    let trail_from = if body.is_empty() {
        lead
    } else {
        lead + body.len()
    };
    let mut out = String::with_capacity(line.len());
    let mut marked = false;
    for (i, c) in line.char_indices() {
        let edge = i < lead || i >= trail_from;
        let shown = match c {
            ' ' if edge || every_space => '␠',
            '\t' => '→',
            '\r' => '␍',
            '\u{a0}' => '⍽',
            // An em space, a zero-width space, a BOM...: shown by code.
            c if c != ' ' && (c.is_whitespace() || zero_width(c)) => {
                out.push_str(&format!("⟨U+{:04X}⟩", c as u32));
                marked = true;
                continue;
            }
            other => other,
        };
        marked |= shown != c;
        out.push(shown);
    }
    (out, marked)
}

/// Characters that take no space on screen.
pub(super) fn zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_unicode_is_shown_by_code() {
        let d = line_diff("a b\n", "a\u{2003}b\u{200b}\n");
        assert!(d.contains("⟨U+2003⟩") && d.contains("⟨U+200B⟩"), "{d}");
        assert!(d.contains("differ only in whitespace"), "{d}");
    }

    #[test]
    fn blank_lines_around_text_do_not_count() {
        assert_eq!(trim_blank_lines("\n\n  a\nb  \n\n"), "  a\nb");
        assert_eq!(trim_blank_lines("   "), "");
        assert!(line_diff("a\nb\n", "a\nc\n").contains("- b\n+ c\n"));
    }

    #[test]
    fn dedent_strips_the_common_indentation_only() {
        assert_eq!(dedent("\n    a\n      b\n  \n    c\n  "), "\na\n  b\n\nc\n");
        // A tab and spaces share no prefix: nothing is common.
        assert_eq!(dedent("\tA\n    B"), "\tA\n    B");
        assert_eq!(dedent("one line"), "one line");
    }

    #[test]
    fn whitespace_differences_are_visible() {
        let d = line_diff("Hello\nBye", "Hello \nBye");
        assert!(d.contains("- Hello\n+ Hello␠\n"), "{d}");
        assert!(d.contains("differ only in whitespace"), "{d}");
        let d = line_diff("a b", "a\tb");
        assert!(d.contains("- a␠b\n+ a→b\n"), "{d}");
        // Text differences keep their inner spaces plain.
        let d = line_diff("the cat", "the dog");
        assert!(d.contains("- the cat\n+ the dog\n"), "{d}");
        assert!(!d.contains('␠'), "{d}");
    }
}
