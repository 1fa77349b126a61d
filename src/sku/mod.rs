//! SKU normalisation: the steps, and a compiled matcher (one hash table for
//! aliases, one `RegexSet` for patterns) shared by the checker, which runs
//! the test vectors, and the interpreter.

use regex::{Regex, RegexSet};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// One normalisation step, applied in order to inputs and aliases alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", content = "arg", rename_all = "snake_case")]
pub enum Step {
    Nfkc,
    Upper,
    Lower,
    Casefold,
    Trim,
    CollapseSpaces,
    Strip(String),
}

pub const STEP_NAMES: &[&str] = &[
    "nfkc",
    "upper",
    "lower",
    "casefold",
    "trim",
    "collapse_spaces",
    "strip",
];

impl Step {
    /// The step a `normalize` entry names, if the name and argument fit.
    pub fn from_name(name: &str, arg: Option<&str>) -> Option<Step> {
        Some(match (name, arg) {
            ("nfkc", None) => Step::Nfkc,
            ("upper", None) => Step::Upper,
            ("lower", None) => Step::Lower,
            ("casefold", None) => Step::Casefold,
            ("trim", None) => Step::Trim,
            ("collapse_spaces", None) => Step::CollapseSpaces,
            ("strip", Some(chars)) => Step::Strip(chars.to_string()),
            _ => return None,
        })
    }

    /// Whether a step removes ASCII letters of one case (used to narrow the
    /// alphabet of the overlap analysis).
    pub fn removes_byte(&self, b: u8) -> bool {
        match self {
            Step::Upper => b.is_ascii_lowercase(),
            Step::Lower | Step::Casefold => b.is_ascii_uppercase(),
            Step::Strip(chars) => b.is_ascii() && chars.contains(b as char),
            _ => false,
        }
    }
}

pub fn normalize(steps: &[Step], input: &str) -> String {
    if input.is_ascii() {
        return normalize_ascii(steps, input);
    }
    let mut s = input.to_string();
    for (i, step) in steps.iter().enumerate() {
        s = match step {
            Step::Nfkc => s.nfkc().collect(),
            Step::Upper => s.to_uppercase(),
            Step::Lower => s.to_lowercase(),
            Step::Casefold => caseless::default_case_fold_str(&s),
            Step::Trim => s.trim().to_string(),
            Step::CollapseSpaces => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Step::Strip(chars) => s.chars().filter(|c| !chars.contains(*c)).collect(),
        };
        // Full-width Latin becomes ASCII under NFKC: the rest is byte work.
        if s.is_ascii() {
            return normalize_ascii(&steps[i + 1..], &s);
        }
    }
    s
}

/// White space as `str::trim` sees it (which, unlike
/// `u8::is_ascii_whitespace`, includes the vertical tab).
fn space(b: u8) -> bool {
    (b as char).is_whitespace()
}

/// [`normalize`] for ASCII input, the common case: every step is a byte
/// map or a filter, done in place on one buffer.
fn normalize_ascii(steps: &[Step], input: &str) -> String {
    let mut b = input.as_bytes().to_vec();
    for step in steps {
        match step {
            // ASCII is already in NFKC.
            Step::Nfkc => {}
            Step::Upper => b.make_ascii_uppercase(),
            // ASCII case folding is lower-casing.
            Step::Lower | Step::Casefold => b.make_ascii_lowercase(),
            Step::Trim => {
                let end = b.len() - b.iter().rev().take_while(|c| space(**c)).count();
                b.truncate(end);
                let start = b.iter().take_while(|c| space(**c)).count();
                b.drain(..start);
            }
            Step::CollapseSpaces => {
                let words: Vec<&[u8]> = b.split(|c| space(*c)).filter(|w| !w.is_empty()).collect();
                b = words.join(&b' ');
            }
            Step::Strip(chars) => b.retain(|c| !chars.contains(*c as char)),
        }
    }
    // Only ASCII bytes were kept or written.
    String::from_utf8(b).unwrap_or_default()
}

/// A rule's pattern after compilation: an exact (normalised) alias or a regex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Pattern {
    Alias(String),
    Regex(String),
}

/// What matched an input, for explanations and audit trails.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub product: String,
    /// Index of the rule in the table.
    pub rule: usize,
    pub normalized: String,
}

/// A compiled SKU table. Exact aliases win over patterns; among patterns
/// the first rule in the file wins.
#[derive(Debug, Clone)]
pub struct Matcher {
    steps: Vec<Step>,
    aliases: HashMap<String, (usize, String)>,
    regexes: Vec<(Regex, usize, String)>,
    /// One pass over the input for all patterns; built on first use, and
    /// only for tables with enough patterns to be worth it.
    set: std::sync::OnceLock<Option<RegexSet>>,
}

/// Below this many patterns, trying them in order beats a `RegexSet`.
const SET_THRESHOLD: usize = 8;

impl Matcher {
    /// `rules`: (pattern, rule index, target template). Regexes must already
    /// be known to compile; one that does not is skipped.
    pub fn new(steps: Vec<Step>, rules: &[(Pattern, usize, String)]) -> Matcher {
        let mut aliases = HashMap::default();
        let mut regexes = Vec::new();
        for (p, rule, target) in rules {
            match p {
                Pattern::Alias(a) => {
                    aliases.entry(a.clone()).or_insert((*rule, target.clone()));
                }
                Pattern::Regex(r) => {
                    if let Ok(re) = Regex::new(r) {
                        regexes.push((re, *rule, target.clone()));
                    }
                }
            }
        }
        Matcher {
            steps,
            aliases,
            regexes,
            set: Default::default(),
        }
    }

    /// Builds a matcher from regexes already compiled (by the checker).
    pub fn from_compiled(
        steps: Vec<Step>,
        alias_rules: Vec<(String, usize, String)>,
        regexes: Vec<(Regex, usize, String)>,
    ) -> Matcher {
        let mut aliases = HashMap::default();
        for (a, rule, target) in alias_rules {
            aliases.entry(a).or_insert((rule, target));
        }
        Matcher {
            steps,
            aliases,
            regexes,
            set: Default::default(),
        }
    }

    fn first_pattern(&self, input: &str) -> Option<usize> {
        if self.regexes.len() < SET_THRESHOLD {
            return self.regexes.iter().position(|(r, _, _)| r.is_match(input));
        }
        let set = self
            .set
            .get_or_init(|| RegexSet::new(self.regexes.iter().map(|(r, _, _)| r.as_str())).ok());
        match set {
            Some(set) => set.matches(input).into_iter().next(),
            None => self.regexes.iter().position(|(r, _, _)| r.is_match(input)),
        }
    }

    pub fn lookup(&self, input: &str) -> Option<Match> {
        let normalized = normalize(&self.steps, input);
        if let Some((rule, target)) = self.aliases.get(&normalized) {
            return Some(Match {
                product: target.clone(),
                rule: *rule,
                normalized,
            });
        }
        let first = self.first_pattern(&normalized)?;
        let (re, rule, template) = &self.regexes[first];
        // Only a result with `$1` needs the (slower) capture search.
        let product = if template.contains('$') {
            let caps = re.captures(&normalized)?;
            let mut product = String::new();
            caps.expand(template, &mut product);
            product
        } else {
            template.clone()
        };
        Some(Match {
            product,
            rule: *rule,
            normalized,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_upper_strip_folds_scripts_and_widths() {
        let steps = vec![Step::Nfkc, Step::Upper, Step::Strip(" -_".into())];
        assert_eq!(normalize(&steps, "ｉＰｈｏｎｅ　１５ Pro"), "IPHONE15PRO");
        assert_eq!(normalize(&steps, "ｱｲﾌｫﾝ15"), "アイフォン15");
        assert_eq!(normalize(&steps, "ไอโฟน 15"), "ไอโฟน15");
    }

    #[test]
    fn many_patterns_use_the_set_and_keep_first_match_order() {
        let mut rules: Vec<(Pattern, usize, String)> = (0..10)
            .map(|i| (Pattern::Regex(format!("^P{i}$")), i, format!("T{i}")))
            .collect();
        rules.push((Pattern::Regex("^P.*$".into()), 10, "ANY".into()));
        let m = Matcher::new(vec![], &rules);
        assert!(rules.len() >= SET_THRESHOLD);
        assert_eq!(m.lookup("P7").unwrap().product, "T7");
        assert_eq!(m.lookup("PX").unwrap().product, "ANY");
        assert!(m.lookup("Q").is_none());
    }

    #[test]
    fn ascii_fast_paths_agree_with_unicode_paths() {
        for s in [
            "iph 15 pm",
            "Galaxy-S24",
            "ABC_def",
            "  two   spaces\t here  ",
            "\u{b}tab\u{b}",
            "",
        ] {
            assert_eq!(normalize(&[Step::Nfkc], s), s.nfkc().collect::<String>());
            assert_eq!(normalize(&[Step::Upper], s), s.to_uppercase());
            assert_eq!(normalize(&[Step::Lower], s), s.to_lowercase());
            assert_eq!(
                normalize(&[Step::Casefold], s),
                caseless::default_case_fold_str(s)
            );
            assert_eq!(normalize(&[Step::Trim], s), s.trim());
            assert_eq!(
                normalize(&[Step::CollapseSpaces], s),
                s.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            let strip = Step::Strip(" -_".into());
            assert_eq!(
                normalize(std::slice::from_ref(&strip), s),
                s.chars()
                    .filter(|c| !" -_".contains(*c))
                    .collect::<String>()
            );
        }
    }

    #[test]
    fn casefold_handles_sharp_s() {
        assert_eq!(normalize(&[Step::Casefold], "STRAẞE"), "strasse");
    }

    #[test]
    fn aliases_win_over_patterns_and_first_pattern_wins() {
        let m = Matcher::new(
            vec![Step::Upper],
            &[
                (Pattern::Regex("^IPH(\\d+)$".into()), 0, "IPHONE-$1".into()),
                (Pattern::Alias("IPH15".into()), 1, "EXACT".into()),
                (Pattern::Regex("^IPH.*$".into()), 2, "LATER".into()),
            ],
        );
        assert_eq!(m.lookup("iph15").unwrap().product, "EXACT");
        assert_eq!(m.lookup("iph14").unwrap().product, "IPHONE-14");
        assert_eq!(m.lookup("iphx").unwrap().rule, 2);
        assert!(m.lookup("nokia").is_none());
    }
}
