//! Salesforce record ids: one record, several spellings. An id is 15
//! case-sensitive characters; the 18-character form adds three characters
//! that encode the case of the first 15, so that it survives systems that
//! ignore case, and Salesforce accepts it in any case. l3map keys
//! hand-offs and writes by record, so every id an outsider gives (an agent's
//! `case`) is brought to one canonical spelling first: the 18-character
//! form, its first 15 characters in their true case, its suffix upper case.
//! Otherwise `5005e0000000006` and `5005e0000000006AAA` would be two records
//! and the Case handed off twice.
//!
//! The suffix: split the 15 characters into three runs of 5; for each run,
//! a 5-bit number whose bit `i` says "character `i` is an upper-case
//! letter", written as one character of `A..Z0..5`.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

fn suffix(id15: &[u8]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (run, chunk) in id15.chunks(5).enumerate() {
        let bits = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |acc, (i, _)| acc | 1 << i);
        out[run] = ALPHABET[bits];
    }
    out
}

/// The canonical 18-character spelling of a 15- or 18-character id, or
/// `None` when `id` is not one (wrong length, a character that is not a
/// letter or digit, or an 18-character suffix that does not fit its id).
pub fn canonical(id: &str) -> Option<String> {
    let b = id.as_bytes();
    if !matches!(b.len(), 15 | 18) || !b.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut first: Vec<u8> = b[..15].to_vec();
    if b.len() == 18 {
        // The suffix says which of the first 15 are upper case, whatever
        // case the whole id was written in.
        for (run, s) in b[15..].iter().enumerate() {
            let bits = ALPHABET.iter().position(|a| *a == s.to_ascii_uppercase())?;
            for i in 0..5 {
                let c = &mut first[run * 5 + i];
                let upper = bits & (1 << i) != 0;
                if upper && c.is_ascii_digit() {
                    return None;
                }
                *c = if upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
            }
        }
    }
    let s = suffix(&first);
    first.extend_from_slice(&s);
    String::from_utf8(first).ok()
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn every_spelling_of_one_record_is_one_id() {
        // Salesforce's documented example pair (15 and 18 characters).
        let want = Some("5005e0000000006AAA".to_string());
        for spelling in [
            "5005e0000000006",
            "5005e0000000006AAA",
            "5005e0000000006aaa",
            "5005E0000000006AAA",
            "5005E0000000006aaa",
        ] {
            assert_eq!(canonical(spelling), want, "{spelling}");
        }
        // Upper-case letters in the id show in the suffix.
        assert_eq!(
            canonical("001D000000IqhSL").as_deref(),
            Some("001D000000IqhSLIAZ")
        );
        assert_eq!(
            canonical("001d000000iqhsliaz").as_deref(),
            Some("001D000000IqhSLIAZ")
        );
    }

    #[test]
    fn what_is_not_an_id_is_refused() {
        for bad in [
            "",
            "5005e000000000",
            "5005e0000000006AA",
            "5005e000000000'AAA",
            "5005e0000000006AA9",
            // The suffix marks a digit as upper case.
            "5005e0000000006BAA",
        ] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }
}
