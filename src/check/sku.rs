//! SKU tables: steps, regexes, ambiguity and shadowing (decided exactly on
//! the DFAs of the patterns), products and test vectors.

use super::mappings::field;
use super::types::{Scope, Ty};
use super::{did_you_mean, CheckErrorKind, Ctx};
use crate::sku::{normalize, Matcher, Pattern, Step, STEP_NAMES};
use crate::syntax::ast::{SkuApply, SkuPattern, SkuTable};
use crate::syntax::Span;
use regex::Regex;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::start;
use regex_automata::Anchored;
use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::collections::{BTreeMap, VecDeque};

/// One compiled pattern with where it came from.
struct Compiled {
    rule: usize,
    span: Span,
    regex: Regex,
    target: String,
    /// Built on first use: most pairs are told apart by their prefixes.
    dfa: std::cell::OnceCell<Option<DFA>>,
    source: String,
    /// The lazy DFA's states, kept across searches so each is built once.
    cache: std::cell::RefCell<Option<Cache>>,
    /// For a pattern anchored at the start: the literals every match begins
    /// with. Two such patterns with unrelated prefixes cannot overlap.
    prefixes: Option<Vec<Vec<u8>>>,
}

impl Compiled {
    fn dfa(&self) -> Option<&DFA> {
        self.dfa.get_or_init(|| analysis_dfa(&self.source)).as_ref()
    }
}

/// The literal prefixes of a start-anchored pattern, if finite.
fn anchored_prefixes(source: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::Look;
    let hir = regex_syntax::Parser::new().parse(source).ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let lits = seq.literals()?;
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// Whether two patterns may match a common input, judged on prefixes only.
fn may_overlap(a: &Compiled, b: &Compiled) -> bool {
    match (&a.prefixes, &b.prefixes) {
        (Some(pa), Some(pb)) => pa
            .iter()
            .any(|x| pb.iter().any(|y| x.starts_with(y) || y.starts_with(x))),
        _ => true,
    }
}

pub(super) fn steps(cx: &mut Ctx, t: &SkuTable) -> Vec<Step> {
    let mut out = Vec::new();
    for s in &t.normalize {
        let arg = s.arg.as_ref().map(|a| a.value.as_str());
        if let Some(step) = Step::from_name(&s.name.name, arg) {
            out.push(step);
            continue;
        }
        match (s.name.name.as_str(), &s.arg) {
            ("strip", None) => {
                cx.err(
                    CheckErrorKind::BadTypeArgs {
                        message: "`strip` needs the characters to remove".into(),
                        help: "write `strip \" -_\"`".into(),
                    }
                    .at(s.span),
                );
            }
            (n, Some(a)) if STEP_NAMES.contains(&n) => {
                cx.err(
                    CheckErrorKind::BadTypeArgs {
                        message: format!("`{n}` takes no argument"),
                        help: format!("write just `{n}`"),
                    }
                    .at(a.span),
                );
            }
            (n, _) => {
                cx.err(
                    CheckErrorKind::Unknown {
                        kind: "normalisation step",
                        name: n.into(),
                        help: did_you_mean(n, STEP_NAMES.iter().copied())
                            .or_else(|| Some(format!("steps are {}", STEP_NAMES.join(", ")))),
                    }
                    .at(s.name.span),
                );
            }
        }
    }
    out
}

pub(super) fn check(cx: &mut Ctx, t: &SkuTable) {
    let steps = steps(cx, t);
    let mut rules: Vec<(Pattern, usize, String)> = Vec::new();
    let mut aliases: HashMap<String, (Span, String)> = HashMap::default();
    let mut compiled: Vec<Compiled> = Vec::new();
    for (ri, r) in t.rules.iter().enumerate() {
        let target = &r.target.0;
        for p in &r.patterns {
            match p {
                SkuPattern::Alias(a) => {
                    let norm = normalize(&steps, &a.value);
                    if norm.is_empty() {
                        cx.err(
                            CheckErrorKind::EmptyAlias {
                                alias: a.value.clone(),
                            }
                            .at(a.span),
                        );
                        continue;
                    }
                    if let Some((first, other)) = aliases.get(&norm) {
                        if other != target {
                            cx.err(CheckErrorKind::AmbiguousSku {
                                input: norm.clone(),
                                help: format!("after normalisation both aliases are {norm:?}; keep it for one product only"),
                                this: target.clone(),
                                other_span: *first,
                                other: other.clone(),
                            }.at(a.span));
                        }
                        continue;
                    }
                    aliases.insert(norm.clone(), (a.span, target.clone()));
                    rules.push((Pattern::Alias(norm), ri, target.clone()));
                }
                SkuPattern::Regex { source, span } => match Regex::new(source) {
                    Err(e) => cx.err(
                        CheckErrorKind::BadRegex {
                            message: regex_error(&e),
                        }
                        .at(*span),
                    ),
                    Ok(re) => {
                        check_captures(cx, &re, target, r.target.1);
                        compiled.push(Compiled {
                            rule: ri,
                            span: *span,
                            dfa: Default::default(),
                            source: source.clone(),
                            cache: Default::default(),
                            prefixes: anchored_prefixes(source),
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
    for a in &t.applies {
        apply(cx, t, a);
    }
    let alias_rules: Vec<(String, usize, String)> = rules
        .iter()
        .filter_map(|(p, r, t)| match p {
            Pattern::Alias(a) => Some((a.clone(), *r, t.clone())),
            Pattern::Regex(_) => None,
        })
        .collect();
    let regexes = compiled
        .iter()
        .map(|c| (c.regex.clone(), c.rule, c.target.clone()))
        .collect();
    let matcher = Matcher::from_compiled(steps.clone(), alias_rules, regexes);
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
            cx.err(
                CheckErrorKind::SkuTestFailed {
                    input: test.input.value.clone(),
                    got: got_s.unwrap_or_else(|| "no match".into()),
                    expected: want.unwrap_or_else(|| "no match".into()),
                    help: format!("the input normalises to {normalized:?}{via}"),
                }
                .at(test.span),
            );
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
            cx.err(
                CheckErrorKind::BadCapture {
                    group: name.into(),
                    groups,
                }
                .at(span),
            );
        }
        rest = &rest[len.min(rest.len())..];
    }
}

/// A lazy DFA for "the pattern matches somewhere in the whole input",
/// anchored at both ends, so that language inclusion and intersection can
/// be decided on it. Lazy, because only the states a search reaches are
/// ever built: Unicode classes such as `\d` make full DFAs expensive.
fn analysis_dfa(source: &str) -> Option<DFA> {
    // Byte-level filler around the pattern is far cheaper to determinize
    // than Unicode `.`; a witness is still valid UTF-8 whenever the shortest
    // one is (searches try ASCII bytes first), else the verdict is unknown.
    let wrapped = format!(r"\A(?s-u:.)*?(?:{source})(?s-u:.)*\z");
    DFA::builder()
        .syntax(regex_automata::util::syntax::Config::new().utf8(false))
        .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
        .configure(
            DFA::config()
                .cache_capacity(8 << 20)
                // State ids must stay valid for a whole search: give up
                // rather than clear the cache.
                .minimum_cache_clear_count(Some(0)),
        )
        .build(&wrapped)
        .ok()
}

/// The outcome of a search for an input with some property.
enum Witness {
    Found(String),
    None,
    /// The search was too large, or found only non-UTF-8 input: no verdict.
    Unknown,
}

struct Lazy<'d> {
    dfa: &'d DFA,
    cache: std::cell::RefMut<'d, Option<Cache>>,
}

impl<'d> Lazy<'d> {
    fn of(c: &'d Compiled) -> Option<Lazy<'d>> {
        let dfa = c.dfa()?;
        let mut cache = c.cache.try_borrow_mut().ok()?;
        cache.get_or_insert_with(|| dfa.create_cache());
        Some(Lazy { dfa, cache })
    }
    fn cache(&mut self) -> &mut Cache {
        self.cache.as_mut().expect("created in Lazy::of")
    }
    fn start(&mut self) -> Option<LazyStateID> {
        let dfa = self.dfa;
        dfa.start_state(self.cache(), &start::Config::new().anchored(Anchored::Yes))
            .ok()
    }
    fn next(&mut self, s: LazyStateID, b: u8) -> Option<LazyStateID> {
        let dfa = self.dfa;
        dfa.next_state(self.cache(), s, b).ok()
    }
    fn accepts(&mut self, s: LazyStateID) -> Option<bool> {
        let dfa = self.dfa;
        dfa.next_eoi_state(self.cache(), s)
            .ok()
            .map(|e| e.is_match())
    }
}

/// Searches breadth-first for the shortest input accepted by `a` and, as
/// `want_b` says, accepted (intersection) or rejected (difference) by `b`.
/// With `b` = `None`, for any input `a` accepts.
fn witness(a: &Compiled, b: Option<&Compiled>, want_b: bool, alphabet: &[u8]) -> Witness {
    const BUDGET: usize = 100_000;
    let Some(mut la) = Lazy::of(a) else {
        return Witness::Unknown;
    };
    let mut lb = match b.map(Lazy::of) {
        Some(None) => return Witness::Unknown,
        Some(Some(l)) => Some(l),
        None => None,
    };
    // One representative byte per pair of byte classes.
    let mut seen = FxHashSet::default();
    let bytes: Vec<u8> = alphabet
        .iter()
        .copied()
        .filter(|&x| {
            let cb = lb.as_ref().map(|l| l.dfa.byte_classes().get(x));
            seen.insert((la.dfa.byte_classes().get(x), cb))
        })
        .collect();
    let sb = match &mut lb {
        Some(l) => l.start(),
        None => Some(LazyStateID::default()),
    };
    let (Some(sa), Some(sb)) = (la.start(), sb) else {
        return Witness::Unknown;
    };
    type Pair = (LazyStateID, LazyStateID);
    let mut parent: HashMap<Pair, Option<(Pair, u8)>> = HashMap::default();
    let mut queue = VecDeque::new();
    parent.insert((sa, sb), None);
    queue.push_back((sa, sb));
    while let Some((x, y)) = queue.pop_front() {
        let by = match &mut lb {
            Some(l) => l.accepts(y),
            None => Some(want_b),
        };
        let (Some(ax), Some(by)) = (la.accepts(x), by) else {
            return Witness::Unknown;
        };
        if ax && by == want_b {
            let mut out = Vec::new();
            let mut cur = (x, y);
            while let Some(Some((prev, byte))) = parent.get(&cur) {
                out.push(*byte);
                cur = *prev;
            }
            out.reverse();
            return String::from_utf8(out).map_or(Witness::Unknown, Witness::Found);
        }
        if parent.len() > BUDGET {
            return Witness::Unknown;
        }
        for &byte in &bytes {
            let Some(nx) = la.next(x, byte) else {
                return Witness::Unknown;
            };
            if nx.is_dead() {
                continue;
            }
            let ny = match &mut lb {
                Some(l) => match l.next(y, byte) {
                    Some(n) => n,
                    None => return Witness::Unknown,
                },
                None => y,
            };
            if want_b && lb.is_some() && ny.is_dead() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry((nx, ny)) {
                e.insert(Some(((x, y), byte)));
                queue.push_back((nx, ny));
            }
        }
    }
    Witness::None
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
            let prefix_ok = c
                .prefixes
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| alias.as_bytes().starts_with(p)));
            if prefix_ok && c.regex.is_match(alias) {
                let mut out = String::new();
                if let Some(caps) = c.regex.captures(alias) {
                    caps.expand(&c.target, &mut out);
                }
                if out != *target {
                    cx.err(
                        CheckErrorKind::OverlappingSku {
                            input: (*alias).clone(),
                            first: *aspan,
                        }
                        .at(c.span),
                    );
                }
            }
        }
    }
    for (j, later) in compiled.iter().enumerate() {
        for earlier in &compiled[..j] {
            if earlier.rule == later.rule && earlier.target == later.target {
                continue;
            }
            if !may_overlap(earlier, later) || earlier.dfa().is_none() || later.dfa().is_none() {
                continue;
            }
            // Shadowed: `later` matches something, and nothing it matches
            // escapes `earlier`. An unknown verdict reports nothing.
            let escapes = witness(later, Some(earlier), false, &alphabet);
            if matches!(escapes, Witness::None) {
                if let Witness::Found(_) = witness(later, None, true, &alphabet) {
                    cx.err(
                        CheckErrorKind::ShadowedSkuRule {
                            by: format!("/{}/", earlier.regex.as_str()),
                            first: earlier.span,
                        }
                        .at(later.span),
                    );
                    break;
                }
            } else if earlier.target != later.target || template_has_captures(&later.target) {
                if let Witness::Found(w) = witness(later, Some(earlier), true, &alphabet) {
                    let mut a = String::new();
                    let mut b = String::new();
                    if let (Some(ca), Some(cb)) =
                        (earlier.regex.captures(&w), later.regex.captures(&w))
                    {
                        ca.expand(&earlier.target, &mut a);
                        cb.expand(&later.target, &mut b);
                    }
                    if a != b {
                        cx.err(
                            CheckErrorKind::OverlappingSku {
                                input: w,
                                first: earlier.span,
                            }
                            .at(later.span),
                        );
                    }
                }
            }
        }
    }
}

/// `apply SOURCE -> CONN FIELD`: text in, a product id out to a field
/// that can hold every product the table produces.
fn apply(cx: &mut Ctx, t: &SkuTable, a: &SkuApply) {
    if let Some((_, ty)) = cx.resolve_path(&a.source, &Scope::default()) {
        if !matches!(ty, Ty::Str | Ty::Any) {
            cx.mismatch(
                format!("SKU table `{}` reads text", t.name.name),
                a.source_span,
                &ty,
                Some("apply it to what the customer wrote, e.g. `turn.product`".into()),
            );
        }
    }
    let Some(kind) = cx.use_conn(&a.conn, None, "a SKU write") else {
        return;
    };
    cx.record_write(
        &a.conn.name,
        format!("sku `{}` writes {}", t.name.name, a.field.display()),
        a.span,
    );
    match field(cx, &a.conn.name, kind, &a.field, true) {
        Some(Ty::Str | Ty::Any) | None => {}
        Some(Ty::Enum(values)) => {
            for (p, span) in &t.products {
                if !values.iter().any(|v| v == p) {
                    cx.mismatch(
                        format!("`{}` has no option `{p}`", a.field.display()),
                        *span,
                        &Ty::Enum(values.clone()),
                        Some(format!(
                            "add `{p}` to the field's enum, or write the product id to a string field"
                        )),
                    );
                }
            }
        }
        Some(ty) => cx.mismatch(
            format!("`{}` cannot hold a product id", a.field.display()),
            a.field.span(),
            &ty,
            Some("write it to a string field".into()),
        ),
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
            cx.err(
                CheckErrorKind::Unknown {
                    kind: "product",
                    name: target.into(),
                    help: did_you_mean(target, declared.keys().copied())
                        .or_else(|| Some("add it to `products`, or fix the id".into())),
                }
                .at(r.target.1),
            );
        }
    }
    for (p, s) in &declared {
        if !reached.contains(p) {
            cx.err(
                CheckErrorKind::UnreachedProduct {
                    product: (*p).into(),
                }
                .at(*s),
            );
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
