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
        return Err(format!("empty seed{EXPECTED}"));
    }
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|error| {
            format!(
                "bad hex seed `{text}`: {}{EXPECTED}",
                hex_problem(hex, &error)
            )
        });
    }
    if is_commit_hash(text) {
        return Ok(fold_commit_hash(text));
    }
    let all_hex = text.bytes().all(|b| b.is_ascii_hexdigit());
    // One digit short of or past a commit hash: a hash cut or extended in copying, which the
    // decimal parser would call a number too large or an invalid digit.
    if all_hex && near_commit_hash(text.len()) {
        return Err(format!(
            "bad seed `{text}`: {} hex digits, where a commit hash has {COMMIT_HASH_DIGITS} (a digit lost or added in copying?){EXPECTED}",
            text.len()
        ));
    }
    text.parse::<u64>().map_err(|error| {
        // Rust's "invalid digit found in string" for `-1`, and "number too large to fit in target
        // type", do not say what a seed may be: a seed is a u64.
        let why = match error.kind() {
            std::num::IntErrorKind::InvalidDigit if text.starts_with('-') => {
                "a seed is not negative".to_string()
            }
            std::num::IntErrorKind::PosOverflow => format!("larger than {}", u64::MAX),
            // Hex digits without the `0x` that says they are hex.
            std::num::IntErrorKind::InvalidDigit if all_hex => {
                format!("not a decimal number; write hex as `0x{text}`")
            }
            std::num::IntErrorKind::InvalidDigit => not_a_digit(text, 10),
            _ => error.to_string(),
        };
        format!("bad seed `{text}`: {why}{EXPECTED}")
    })
}

/// What every refusal of a seed ends with.
const EXPECTED: &str = "; expected a decimal number, 0x-hex, or a 40-digit commit hash";

/// The digits of a git commit hash (SHA-1), which a seed may be.
const COMMIT_HASH_DIGITS: usize = 40;

/// Whether `text` (trimmed) is spelt as a git commit hash (40 hex digits), which a seed may be and
/// a trace hash never is.
fn is_commit_hash(text: &str) -> bool {
    text.len() == COMMIT_HASH_DIGITS && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One digit short of or past a commit hash: a hash cut or extended in copying.
fn near_commit_hash(digits: usize) -> bool {
    digits.abs_diff(COMMIT_HASH_DIGITS) == 1
}

/// Why the digits after `0x` are no u64, in a seed's terms rather than Rust's integer parser's
/// ("number too large to fit in target type", "invalid digit found in string").
fn hex_problem(hex: &str, error: &std::num::ParseIntError) -> String {
    match error.kind() {
        std::num::IntErrorKind::Empty => "no digits after `0x`".to_string(),
        std::num::IntErrorKind::PosOverflow => {
            let digits = hex.trim_start_matches('0').len();
            if digits.abs_diff(COMMIT_HASH_DIGITS) <= 1 {
                format!(
                    "{digits} hex digits, more than the 16 a seed has; a commit hash is given without `0x`, and has {COMMIT_HASH_DIGITS}"
                )
            } else {
                format!(
                    "{digits} hex digits, more than the 16 a seed has (at most 0x{:x})",
                    u64::MAX
                )
            }
        }
        std::num::IntErrorKind::InvalidDigit => not_a_digit(hex, 16),
        _ => error.to_string(),
    }
}

/// Names the first character of `digits` that is not a digit in `radix` (16 or 10).
fn not_a_digit(digits: &str, radix: u32) -> String {
    let base = if radix == 16 { "hex" } else { "decimal" };
    match digits.chars().find(|c| !c.is_digit(radix)) {
        Some(c) => format!("`{}` is not a {base} digit", c.escape_debug()),
        None => format!("not a {base} number"),
    }
}

/// Reads a run's trace hash as `sim` prints it (`format_seed`), or the same number in any spelling
/// a seed may have (decimal, fewer hex digits), so that files that spelt one so keep working; the
/// one reader of a recorded hash (a repro's `[expect]`, its comparison on replay, a sweep's
/// records). `None` for what is no u64, and for a commit hash, which a seed may be but which
/// folds to a number no run's trace hash is.
pub fn parse_trace_hash(text: &str) -> Option<u64> {
    if is_commit_hash(text.trim()) {
        return None;
    }
    parse_seed(text).ok()
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

    /// A trace hash is read in every spelling a seed has but a commit hash's: no run's trace
    /// hash is a folded commit hash, so a recorded one could never match.
    #[test]
    fn a_trace_hash_is_a_seed_that_is_no_commit_hash() {
        assert_eq!(
            parse_trace_hash(&format_seed(0x0797_ad6e)),
            Some(0x0797_ad6e)
        );
        assert_eq!(parse_trace_hash(" 0x2a "), Some(42));
        assert_eq!(parse_trace_hash("42"), Some(42));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert!(parse_seed(commit).is_ok());
        assert_eq!(parse_trace_hash(commit), None);
        assert_eq!(parse_trace_hash(&format!(" {commit}\n")), None);
        assert_eq!(parse_trace_hash("0xgg"), None);
        assert_eq!(parse_trace_hash(""), None);
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

    /// A hex seed's refusal says what is wrong in a seed's terms, and a string one digit short
    /// of or past a commit hash says that a commit hash has 40, where Rust's integer parser said
    /// "number too large to fit in target type" or "invalid digit found in string".
    #[test]
    fn bad_hex_seeds_and_near_commit_hashes_say_what_a_seed_may_be() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let cases = [
            (
                "0x1234567890abcdef1".to_string(),
                "17 hex digits, more than the 16 a seed has (at most 0xffffffffffffffff)",
            ),
            ("0xgg".to_string(), "`g` is not a hex digit"),
            ("0x".to_string(), "no digits after `0x`"),
            (
                commit[..39].to_string(),
                "39 hex digits, where a commit hash has 40",
            ),
            (
                format!("{commit}8"),
                "41 hex digits, where a commit hash has 40",
            ),
            (
                format!("0x{commit}"),
                "a commit hash is given without `0x`, and has 40",
            ),
            (
                "12ab".to_string(),
                "not a decimal number; write hex as `0x12ab`",
            ),
            ("12z".to_string(), "`z` is not a decimal digit"),
        ];
        for (seed, says) in cases {
            let error = parse_seed(&seed).unwrap_err();
            assert!(
                error.contains(says) && error.ends_with(EXPECTED),
                "{seed}: {error}"
            );
            assert!(
                !error.contains("target type") && !error.contains("found in string"),
                "{seed}: {error}"
            );
        }
        // All-decimal 39 digits is a near commit hash too, not a number too large.
        let decimal_39 = "1".repeat(39);
        assert!(
            parse_seed(&decimal_39)
                .unwrap_err()
                .contains("a commit hash has 40")
        );
    }
}
