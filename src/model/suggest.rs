//! "Did you mean …?": the closest known name to a mistyped one. Pure and
//! shared, so the checker and the runtime (a refused status transition)
//! suggest the same way without the runtime depending on the checker.

/// The closest candidate to `name`, phrased as a suggestion: compared
/// case-insensitively by Jaro-Winkler similarity, only above 0.8 (closer
/// than that is a different word, not a typo).
pub fn did_you_mean<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    let lname = name.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&lname, &c.to_lowercase());
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn a_typo_gets_the_closest_name_and_a_stranger_nothing() {
        let names = ["solved", "open", "pending_customer"];
        assert_eq!(
            did_you_mean("slved", names.iter().copied()).as_deref(),
            Some("did you mean `solved`?")
        );
        assert_eq!(did_you_mean("refunded", names.iter().copied()), None);
    }
}
