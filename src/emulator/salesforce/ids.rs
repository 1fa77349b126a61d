const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn make(prefix: &str, serial: u64) -> String {
    let mut tail = [b'0'; 9];
    let mut n = serial;
    for slot in tail.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let prefix: String = prefix.chars().chain("000".chars()).take(3).collect();
    let id15 = format!("{prefix}5e0{}", String::from_utf8_lossy(&tail));
    with_checksum(&id15)
}

/// The 18-character form of a 15-character Id (the suffix encodes which
/// characters are upper case): the connectors' canonical spelling.
pub fn with_checksum(id15: &str) -> String {
    crate::connectors::salesforce_id::canonical(id15).unwrap_or_else(|| id15.to_string())
}

/// A well-formed Id: 15 alphanumerics, or 18 whose suffix fits, in any
/// case (as Salesforce takes them).
pub fn is_valid(id: &str) -> bool {
    crate::connectors::salesforce_id::canonical(id).is_some()
}

#[cfg(test)]
mod tests {
    use crate::emulator::salesforce::ids;

    #[test]
    fn ids_have_valid_checksums() {
        let id = ids::make("500", 1);
        assert_eq!(id.len(), 18);
        assert!(ids::is_valid(&id));
        assert!(ids::is_valid(&id[..15]));
        assert!(!ids::is_valid("500xx"));
        assert!(ids::is_valid(&id.to_ascii_uppercase()));
        // A published Id and its checksum.
        assert_eq!(ids::with_checksum("001D000000IRFma"), "001D000000IRFmaIAH");
    }
}
