const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECK: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

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

/// Each 5-character chunk's uppercase letters, as a bit mask, pick one
/// checksum character.
pub fn with_checksum(id15: &str) -> String {
    let mut out = id15.to_string();
    for chunk in id15.as_bytes().chunks(5) {
        let mask = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |m, (i, _)| m | (1 << i));
        out.push(CHECK[mask & 31] as char);
    }
    out
}

/// A well-formed Id: 15 alphanumerics, or 18 with a valid checksum.
pub fn is_valid(id: &str) -> bool {
    let alnum = id.bytes().all(|b| b.is_ascii_alphanumeric());
    match id.len() {
        15 => alnum,
        18 => alnum && with_checksum(&id[..15]) == id,
        _ => false,
    }
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
        // A published Id and its checksum.
        assert_eq!(ids::with_checksum("001D000000IRFma"), "001D000000IRFmaIAH");
    }
}
