//! Seeds: how a person writes one, and how the simulation prints one back.
//!
//! A seed is a `u64`. It may be written in decimal (`42`), in hex (`0x2a`), or as a 40-digit git
//! commit hash, so that a nightly run can be keyed by the commit it tests (as TigerBeetle's VOPR
//! accepts). A commit hash folds to 64 bits with a fixed, documented mix so that the same hash gives
//! the same seed on every machine and release.

/// Parses a seed written as decimal, `0x` hex, or a 40-hex-digit git commit hash.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "empty seed: expected a decimal number, 0x-hex, or a 40-digit commit hash".into(),
        );
    }
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16)
            .map_err(|error| format!("bad hex seed `{text}`: {error} (at most 16 hex digits)"));
    }
    if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(fold_commit_hash(text));
    }
    text.parse::<u64>().map_err(|error| {
        // Rust's "invalid digit found in string" for `-1`, and "number too large to fit in target
        // type", do not say what a seed may be: a seed is a u64.
        let why = match error.kind() {
            std::num::IntErrorKind::InvalidDigit if text.starts_with('-') => {
                "a seed is not negative".to_string()
            }
            std::num::IntErrorKind::PosOverflow => format!("larger than {}", u64::MAX),
            _ => error.to_string(),
        };
        format!(
            "bad seed `{text}`: {why}; expected a decimal number, 0x-hex, or a 40-digit commit hash"
        )
    })
}

/// Prints a seed the way the replay command line wants it.
pub fn format_seed(seed: u64) -> String {
    format!("0x{seed:016x}")
}

/// Folds the 160 bits of a commit hash into 64: the five 32-bit words are combined with a
/// multiply-xorshift so that every digit matters.
fn fold_commit_hash(hex: &str) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in hex.as_bytes().chunks(8) {
        let word =
            u64::from_str_radix(std::str::from_utf8(chunk).expect("ascii"), 16).expect("hex");
        state = (state ^ word).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        state ^= state >> 31;
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_hex_and_commit_hash_parse() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0x2A"), Ok(42));
        assert_eq!(parse_seed(&format_seed(0xdead_beef)), Ok(0xdead_beef));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let folded = parse_seed(commit).unwrap();
        assert_eq!(
            parse_seed(commit),
            Ok(folded),
            "a commit hash folds the same way every time"
        );
        let other = "0123456789abcdef0123456789abcdef01234568";
        assert_ne!(parse_seed(other).unwrap(), folded, "the last digit matters");
    }

    #[test]
    fn bad_seeds_are_refused_with_a_reason() {
        for bad in [
            "",
            "-1",
            "0x",
            "0xgg",
            "18446744073709551616",
            "12ab",
            "0x11112222333344445",
        ] {
            let error = parse_seed(bad).unwrap_err();
            assert!(!error.is_empty(), "{bad:?} must be refused with a message");
        }
        // The reason says what a seed may be, not what Rust's integer parser met.
        assert!(
            parse_seed("-1")
                .unwrap_err()
                .starts_with("bad seed `-1`: a seed is not negative;")
        );
        assert!(
            parse_seed("18446744073709551616")
                .unwrap_err()
                .contains(": larger than 18446744073709551615;")
        );
    }
}
