//! SKU tables: steps, regexes, ambiguity and shadowing (decided exactly on
//! the DFAs of the patterns), products and test vectors.

use super::{did_you_mean, CheckError, Ctx};
use crate::sku::{normalize, Matcher, Pattern, Step, STEP_NAMES};
use crate::syntax::ast::{SkuPattern, SkuTable};
use crate::syntax::Span;
use regex::Regex;
use regex_automata::dfa::{dense, Automaton};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::Anchored;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// One compiled pattern with where it came from.
struct Compiled {
    rule: usize,
    span: Span,
    regex: Regex,
    target: String,
    dfa: Option<dense::DFA<Vec<u32>>>,
}

pub(super) fn steps(cx: &mut Ctx, t: &SkuTable) -> Vec<Step> {
    let mut out = Vec::new();
    for s in &t.normalize {
        let step = match (s.name.name.as_str(), &s.arg) {
            ("nfkc", None) => Step::Nfkc,
            ("upper", None) => Step::Upper,
            ("lower", None) => Step::Lower,
            ("casefold", None) => Step::Casefold,
            ("trim", None) => Step::Trim,
            ("collapse_spaces", None) => Step::CollapseSpaces,
            ("strip", Some(a)) => Step::Strip(a.value.clone()),
            ("strip", None) => {
                cx.err(CheckError::BadTypeArgs {
                    message: "`strip` needs the characters to remove".into(),
                    help: "write `strip \" -_\"`".into(),
                    span: s.span,
                });
                continue;
            }
            (n, Some(a)) if STEP_NAMES.contains(&n) => {
                cx.err(CheckError::BadTypeArgs {
                    message: format!("`{n}` takes no argument"),
                    help: format!("write just `{n}`"),
                    span: a.span,
                });
                continue;
            }
            (n, _) => {
                cx.err(CheckError::Unknown {
                    kind: "normalisation step",
                    name: n.into(),
                    span: s.name.span,
                    help: did_you_mean(n, STEP_NAMES.iter().copied())
                        .or_else(|| Some(format!("steps are {}", STEP_NAMES.join(", ")))),
                });
                continue;
            }
        };
        out.push(step);
    }
    out
}

pub(super) fn check(cx: &mut Ctx, t: &SkuTable) {
    let steps = steps(cx, t);
    let mut rules: Vec<(Pattern, usize, String)> = Vec::new();
    let mut aliases: HashMap<String, (Span, String)> = HashMap::new();
    let mut compiled: Vec<Compiled> = Vec::new();
    for (ri, r) in t.rules.iter().enumerate() {
        let target = &r.target.0;
        for p in &r.patterns {
            match p {
                SkuPattern::Alias(a) => {
                    let norm = normalize(&steps, &a.value);
                    if norm.is_empty() {
                        cx.err(CheckError::EmptyAlias {
                            alias: a.value.clone(),
                            span: a.span,
                        });
                        continue;
                    }
                    if let Some((first, other)) = aliases.get(&norm) {
                        if other != target {
                            cx.err(CheckError::AmbiguousSku {
                                input: norm.clone(),
                                help: format!("after normalisation both aliases are {norm:?}; keep it for one product only"),
                                span: a.span,
                                this: target.clone(),
                                other_span: *first,
                                other: other.clone(),
                            });
                        }
                        continue;
                    }
                    aliases.insert(norm.clone(), (a.span, target.clone()));
                    rules.push((Pattern::Alias(norm), ri, target.clone()));
                }
                SkuPattern::Regex { source, span } => match Regex::new(source) {
                    Err(e) => cx.err(CheckError::BadRegex {
                        message: regex_error(&e),
                        span: *span,
                    }),
                    Ok(re) => {
                        check_captures(cx, &re, target, r.target.1);
                        compiled.push(Compiled {
                            rule: ri,
                            span: *span,
                            dfa: analysis_dfa(source),
                            regex: re,
                            target: target.clone(),
                        });
                        rules.push((Pattern::Regex(source.clone()), ri, target.clone()));
                    }
                },
            }
        }
    }
    overlaps(cx, &steps, &compiled, &aliases);
    products(cx, t);
    let matcher = Matcher::new(steps.clone(), &rules);
    for test in &t.tests {
        let got = matcher.lookup(&test.input.value);
        let got_s = got.as_ref().map(|m| m.product.clone());
        let want = test.expected.as_ref().map(|(p, _)| p.clone());
        if got_s != want {
            let normalized = normalize(&steps, &test.input.value);
            let via = match &got {
                Some(m) => format!(
                    "; rule at {} matched",
                    cx.sources.locate(t.rules[m.rule].span)
                ),
                None => String::new(),
            };
            cx.err(CheckError::SkuTestFailed {
                input: test.input.value.clone(),
                got: got_s.unwrap_or_else(|| "no match".into()),
                expected: want.unwrap_or_else(|| "no match".into()),
                help: format!("the input normalises to {normalized:?}{via}"),
                span: test.span,
            });
        }
    }
}

fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .filter(|l| l.starts_with("error:"))
            .map(|l| l.trim_start_matches("error:").trim().to_string())
            .next()
            .unwrap_or_else(|| s.clone()),
        other => other.to_string(),
    }
}

fn check_captures(cx: &mut Ctx, re: &Regex, target: &str, span: Span) {
    let groups = re.captures_len() - 1;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let mut rest = target;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let (name, len) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(e) => (&r[..e], e + 2),
                None => break,
            }
        } else if rest.starts_with('$') {
            rest = &rest[1..];
            continue;
        } else {
            let e = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..e], e)
        };
        let ok = match name.parse::<usize>() {
            Ok(n) => n <= groups,
            Err(_) => names.contains(&name),
        };
        if !ok {
            cx.err(CheckError::BadCapture {
                group: name.into(),
                groups,
                span,
            });
        }
        rest = &rest[len.min(rest.len())..];
    }
}

/// A DFA for "the pattern matches somewhere in the whole input", anchored
/// at both ends, so that language inclusion and intersection can be decided
/// on it. `None` when the DFA would be too large to analyse.
fn analysis_dfa(source: &str) -> Option<dense::DFA<Vec<u32>>> {
    let wrapped = format!(r"\A(?s:.)*?(?:{source})(?s:.)*\z");
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .minimize(false)
                .dfa_size_limit(Some(4 << 20))
                .determinize_size_limit(Some(4 << 20)),
        )
        .build(&wrapped)
        .ok()
}

fn start_state(dfa: &dense::DFA<Vec<u32>>) -> Option<StateID> {
    dfa.start_state(&start::Config::new().anchored(Anchored::Yes))
        .ok()
}

fn accepts(dfa: &dense::DFA<Vec<u32>>, s: StateID) -> bool {
    dfa.is_match_state(dfa.next_eoi_state(s))
}

/// Searches for the shortest input accepted by `a` and, depending on
/// `want_b`, accepted (intersection) or rejected (difference) by `b`.
fn witness(
    a: &dense::DFA<Vec<u32>>,
    b: &dense::DFA<Vec<u32>>,
    want_b: bool,
    alphabet: &[u8],
) -> Option<String> {
    const BUDGET: usize = 200_000;
    let (sa, sb) = (start_state(a)?, start_state(b)?);
    type Pair = (StateID, StateID);
    let mut parent: HashMap<Pair, Option<(Pair, u8)>> = HashMap::new();
    let mut queue = VecDeque::new();
    parent.insert((sa, sb), None);
    queue.push_back((sa, sb));
    while let Some((x, y)) = queue.pop_front() {
        if accepts(a, x) && accepts(b, y) == want_b {
            let mut bytes = Vec::new();
            let mut cur = (x, y);
            while let Some(Some((prev, byte))) = parent.get(&cur) {
                bytes.push(*byte);
                cur = *prev;
            }
            bytes.reverse();
            return String::from_utf8(bytes).ok();
        }
        if parent.len() > BUDGET {
            return None;
        }
        for &byte in alphabet {
            let nx = a.next_state(x, byte);
            if a.is_dead_state(nx) {
                continue;
            }
            let ny = b.next_state(y, byte);
            if want_b && b.is_dead_state(ny) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry((nx, ny)) {
                e.insert(Some(((x, y), byte)));
                queue.push_back((nx, ny));
            }
        }
    }
    None
}

fn overlaps(
    cx: &mut Ctx,
    steps: &[Step],
    compiled: &[Compiled],
    aliases: &HashMap<String, (Span, String)>,
) {
    // Bytes a normalised input can contain: narrows witnesses to real inputs.
    let alphabet: Vec<u8> = (0u8..=255)
        .filter(|b| !steps.iter().any(|s| s.removes_byte(*b)))
        .collect();
    let mut sorted_aliases: Vec<(&String, &(Span, String))> = aliases.iter().collect();
    sorted_aliases.sort_by_key(|(_, (s, _))| s.start);
    for c in compiled {
        for (alias, (aspan, target)) in &sorted_aliases {
            if c.regex.is_match(alias) {
                let mut out = String::new();
                if let Some(caps) = c.regex.captures(alias) {
                    caps.expand(&c.target, &mut out);
                }
                if out != *target {
                    cx.err(CheckError::OverlappingSku {
                        input: (*alias).clone(),
                        span: c.span,
                        first: *aspan,
                    });
                }
            }
        }
    }
    for (j, later) in compiled.iter().enumerate() {
        let Some(lb) = &later.dfa else { continue };
        for earlier in &compiled[..j] {
            if earlier.rule == later.rule && earlier.target == later.target {
                continue;
            }
            let Some(ea) = &earlier.dfa else { continue };
            // Shadowed: `later` matches something, and nothing it matches
            // escapes `earlier`.
            if witness(lb, ea, false, &alphabet).is_none() {
                if witness(lb, lb, true, &alphabet).is_some() {
                    cx.err(CheckError::ShadowedSkuRule {
                        by: format!("/{}/", earlier.regex.as_str()),
                        span: later.span,
                        first: earlier.span,
                    });
                    break;
                }
            } else if earlier.target != later.target || template_has_captures(&later.target) {
                if let Some(w) = witness(lb, ea, true, &alphabet) {
                    let mut a = String::new();
                    let mut b = String::new();
                    if let (Some(ca), Some(cb)) =
                        (earlier.regex.captures(&w), later.regex.captures(&w))
                    {
                        ca.expand(&earlier.target, &mut a);
                        cb.expand(&later.target, &mut b);
                    }
                    if a != b {
                        cx.err(CheckError::OverlappingSku {
                            input: w,
                            span: later.span,
                            first: earlier.span,
                        });
                    }
                }
            }
        }
    }
}

fn template_has_captures(t: &str) -> bool {
    t.contains('$')
}

fn products(cx: &mut Ctx, t: &SkuTable) {
    if t.products.is_empty() {
        return;
    }
    let declared: BTreeMap<&str, Span> = t.products.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    let mut reached: Vec<&str> = Vec::new();
    for r in &t.rules {
        let target = r.target.0.as_str();
        if template_has_captures(target) {
            let pattern = template_regex(target);
            reached.extend(
                declared
                    .keys()
                    .filter(|p| pattern.as_ref().is_some_and(|re| re.is_match(p))),
            );
            continue;
        }
        if declared.contains_key(target) {
            reached.push(target);
        } else {
            cx.err(CheckError::Unknown {
                kind: "product",
                name: target.into(),
                span: r.target.1,
                help: did_you_mean(target, declared.keys().copied())
                    .or_else(|| Some("add it to `products`, or fix the id".into())),
            });
        }
    }
    for (p, s) in &declared {
        if !reached.contains(p) {
            cx.err(CheckError::UnreachedProduct {
                product: (*p).into(),
                span: *s,
            });
        }
    }
}

/// `APPLE-IPHONE-$1-PRO-MAX` -> `^APPLE-IPHONE-.+-PRO-MAX$`
fn template_regex(t: &str) -> Option<Regex> {
    let capture = Regex::new(r"\$(\{[^}]*\}|[A-Za-z0-9_]+)").ok()?;
    let mut out = String::from("^");
    let mut last = 0;
    for m in capture.find_iter(t) {
        out.push_str(&regex::escape(&t[last..m.start()]));
        out.push_str(".+");
        last = m.end();
    }
    out.push_str(&regex::escape(&t[last..]));
    out.push('$');
    Regex::new(&out).ok()
}
