//! Order-preserving ("memcomparable") byte encoding of key values.
//!
//! For every kind, `a < b` as values if and only if `enc(a) < enc(b)` as byte strings, and every
//! encoding is self-delimiting, so concatenations of encodings (composite keys, `key ++ pk`) sort
//! like tuples. Rules:
//! - a key part starts with a tag: [`TAG_NULL`] (null sorts first) or [`TAG_VALUE`];
//! - i64: big-endian with the sign bit flipped (8 bytes);
//! - f64: IEEE bits, negatives inverted, positives with the sign bit set (8 bytes); `-0.0` is
//!   stored as `0.0` (they compare equal) and every NaN as one canonical NaN that sorts after
//!   `+inf` (JSON cannot carry NaN, so only engine code can produce one);
//! - strings: UTF-8 bytes with `0x00` escaped as `0x00 0xFF`, terminated by `0x00 0x01`, so a
//!   string sorts before every string it is a proper prefix of, and `like 'p%'` is the byte range
//!   starting with [`encode_str_prefix`]`(p)`;
//! - booleans: `0x00` / `0x01`; u64: big-endian, [`encode_u64_desc`] inverted (newest first).

/// Tag of a null key part.
pub const TAG_NULL: u8 = 0x01;
/// Tag of a non-null key part.
pub const TAG_VALUE: u8 = 0x02;

const CANONICAL_NAN: u64 = 0x7FF8_0000_0000_0000;

/// Appends the order-preserving encoding of an i64 (8 bytes).
pub fn encode_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

/// Appends the order-preserving encoding of an f64 (8 bytes); see the module doc for -0.0/NaN.
pub fn encode_f64(out: &mut Vec<u8>, v: f64) {
    let bits = if v.is_nan() {
        CANONICAL_NAN
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    };
    let enc = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    out.extend_from_slice(&enc.to_be_bytes());
}

/// Appends a u64 big-endian (ascending order).
pub fn encode_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends an inverted u64 (descending order: larger values sort first).
pub fn encode_u64_desc(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&(!v).to_be_bytes());
}

/// Decodes an [`encode_u64_desc`] suffix.
pub fn decode_u64_desc(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some(!u64::from_be_bytes(arr))
}

/// Appends a boolean (false < true).
pub fn encode_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Appends the escaped bytes of `s` without the terminator: every encoding of a string that
/// starts with `s` starts with these bytes.
pub fn encode_str_prefix(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

/// Appends the complete, self-delimiting encoding of a string.
pub fn encode_str(out: &mut Vec<u8>, s: &str) {
    encode_str_prefix(out, s);
    out.extend_from_slice(&[0x00, 0x01]);
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None` when
/// there is none (the prefix is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// The length of one encoded string (with its terminator) at the start of `bytes`.
pub(crate) fn str_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            match bytes.get(i + 1)? {
                0x01 => return Some(i + 2),
                0xFF => i += 2,
                _ => return None,
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Appends the order-preserving encoding of a decimal number given as `[+-]digits[.digits]`
/// (checked by the caller; anything else encodes its digits only). Layout: a class byte
/// (negative 1, zero 2, positive 3); for non-zero numbers the decimal exponent (position of the
/// first significant digit, i32 with its sign bit flipped, big-endian) and the significant digits,
/// then a 0 terminator; negative numbers have those bytes inverted, so larger magnitudes sort first.
pub fn encode_decimal(out: &mut Vec<u8>, s: &str) {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let (exponent, digits): (i64, String) = if int.is_empty() {
        let significant = frac.trim_start_matches('0');
        (-((frac.len() - significant.len()) as i64), significant.to_string())
    } else {
        (int.len() as i64, format!("{int}{frac}").trim_end_matches('0').to_string())
    };
    if digits.is_empty() {
        out.push(2);
        return;
    }
    out.push(if negative { 1 } else { 3 });
    let exponent = exponent.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let mut rest = Vec::with_capacity(5 + digits.len());
    rest.extend_from_slice(&((exponent as u32) ^ 0x8000_0000).to_be_bytes());
    rest.extend(digits.bytes().filter(u8::is_ascii_digit));
    rest.push(0);
    if negative {
        rest.iter_mut().for_each(|b| *b = !*b);
    }
    out.extend_from_slice(&rest);
}

/// The length of one encoded decimal at the start of `bytes`.
pub(crate) fn decimal_len(bytes: &[u8]) -> Option<usize> {
    let terminator = match bytes.first()? {
        2 => return Some(1),
        1 => 0xFF,
        3 => 0x00,
        _ => return None,
    };
    let at = bytes.get(5..)?.iter().position(|&b| b == terminator)?;
    Some(5 + at + 1)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::Rng;
    use super::*;
    use std::cmp::Ordering;

    fn enc_i(v: i64) -> Vec<u8> {
        let mut o = Vec::new();
        encode_i64(&mut o, v);
        o
    }
    fn enc_f(v: f64) -> Vec<u8> {
        let mut o = Vec::new();
        encode_f64(&mut o, v);
        o
    }
    fn enc_s(v: &str) -> Vec<u8> {
        let mut o = Vec::new();
        encode_str(&mut o, v);
        o
    }

    #[test]
    fn i64_byte_order_is_value_order() {
        let mut rng = Rng::new(1);
        let mut vals = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for _ in 0..3000 {
            vals.push(rng.i64_wide());
        }
        for a in &vals {
            for b in vals.iter().take(200) {
                assert_eq!(a.cmp(b), enc_i(*a).cmp(&enc_i(*b)), "{a} vs {b}");
            }
        }
        for w in 0..vals.len() - 1 {
            let (a, b) = (vals[w], vals[w + 1]);
            assert_eq!(a.cmp(&b), enc_i(a).cmp(&enc_i(b)), "{a} vs {b}");
        }
    }

    #[test]
    fn f64_byte_order_is_value_order_with_zero_and_nan_rules() {
        let mut rng = Rng::new(2);
        let mut vals = vec![
            f64::NEG_INFINITY,
            f64::MIN,
            -1.5,
            -f64::MIN_POSITIVE,
            -5e-324,
            0.0,
            5e-324,
            f64::MIN_POSITIVE,
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for _ in 0..3000 {
            vals.push(rng.f64_wide());
        }
        for (i, a) in vals.iter().enumerate() {
            for b in vals.iter().skip(i % 7).step_by(7) {
                let want = a.partial_cmp(b).unwrap();
                assert_eq!(want, enc_f(*a).cmp(&enc_f(*b)), "{a} vs {b}");
            }
        }
        // -0.0 and 0.0 are one key; NaN (any payload/sign) is one key after +inf.
        assert_eq!(enc_f(-0.0), enc_f(0.0));
        assert_eq!(enc_f(f64::NAN), enc_f(-f64::NAN));
        assert!(enc_f(f64::NAN) > enc_f(f64::INFINITY));
        assert!(enc_f(-0.0) > enc_f(-5e-324));
    }

    #[test]
    fn string_byte_order_is_value_order_including_nul_and_prefixes() {
        let mut rng = Rng::new(3);
        let mut vals: Vec<String> = ["", "\0", "\0\0", "a", "a\0", "a\0b", "ab", "b", "é", "\u{10FFFF}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for _ in 0..2000 {
            vals.push(rng.string_with_nuls(6));
        }
        for (i, a) in vals.iter().enumerate() {
            for b in vals.iter().skip(i % 5).step_by(5) {
                assert_eq!(a.as_bytes().cmp(b.as_bytes()), enc_s(a).cmp(&enc_s(b)), "{a:?} vs {b:?}");
                // prefix relation: a is a prefix of b  <=>  b's encoding starts with a's prefix bytes
                let mut p = Vec::new();
                encode_str_prefix(&mut p, a);
                assert_eq!(b.starts_with(a.as_str()), enc_s(b).starts_with(&p), "{a:?} prefix of {b:?}");
            }
            assert_eq!(str_len(&enc_s(a)), Some(enc_s(a).len()));
        }
    }

    #[test]
    fn composite_keys_sort_like_tuples() {
        let mut rng = Rng::new(4);
        let mut tuples: Vec<(String, i64)> = Vec::new();
        for _ in 0..800 {
            tuples.push((rng.string_with_nuls(3), rng.i64_small()));
        }
        let enc = |t: &(String, i64)| {
            let mut o = Vec::new();
            encode_str(&mut o, &t.0);
            encode_i64(&mut o, t.1);
            o
        };
        for a in &tuples {
            for b in tuples.iter().take(100) {
                let want = a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1));
                assert_eq!(want, enc(a).cmp(&enc(b)), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn u64_desc_bool_and_successor() {
        let mut a = Vec::new();
        encode_u64_desc(&mut a, 5);
        let mut b = Vec::new();
        encode_u64_desc(&mut b, 6);
        assert_eq!(a.cmp(&b), Ordering::Greater, "newer versions sort first");
        assert_eq!(decode_u64_desc(&a), Some(5));
        let (mut f, mut t) = (Vec::new(), Vec::new());
        encode_bool(&mut f, false);
        encode_bool(&mut t, true);
        assert!(f < t);
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn decimal_byte_order_is_numeric_order() {
        let ordered = [
            "-1000",
            "-999.5",
            "-10",
            "-9.99",
            "-1.23",
            "-1.2",
            "-1",
            "-0.5",
            "-0.05",
            "-0.0501",
            "0",
            "0.001",
            "0.0010001",
            "0.01",
            "0.5",
            "1",
            "1.2",
            "1.23",
            "9",
            "9.5",
            "10",
            "10.01",
            "99",
            "100",
            "1000.5",
        ];
        let enc = |s: &str| {
            let mut o = Vec::new();
            encode_decimal(&mut o, s);
            o
        };
        let mut sorted: Vec<&str> = ordered.to_vec();
        sorted.sort_by(|a, b| a.parse::<f64>().unwrap().partial_cmp(&b.parse::<f64>().unwrap()).unwrap());
        for w in sorted.windows(2) {
            assert!(enc(w[0]) < enc(w[1]), "{} < {}", w[0], w[1]);
        }
        for same in [["1.50", "1.5"], ["001", "1"], ["0.000", "-0"], ["+2", "2.0"]] {
            assert_eq!(enc(same[0]), enc(same[1]), "{same:?}");
        }
        for v in ordered {
            let e = enc(v);
            let mut tail = e.clone();
            tail.extend_from_slice(b"junk");
            assert_eq!(decimal_len(&tail), Some(e.len()), "{v}");
        }
    }
}
