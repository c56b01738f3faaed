//! `digest::*`: hashes and encodings TDG scripts take from Tarantool's `digest` module, on
//! strings (hashed as their UTF-8 bytes): `sha256_hex`, `sha1_hex`, `md5_hex` (lower-case hex),
//! `crc32` (an integer, as Tarantool's `digest.crc32`: CRC-32C, initial value 0xFFFFFFFF, no
//! final XOR), `base64_encode` / `base64_decode`, `hex_encode` / `hex_decode`.

use base64::Engine as _;
use rhai::{ImmutableString, Module};
use sha2::Digest as _;

use crate::error::api_error;

type Res<T> = Result<T, Box<rhai::EvalAltResult>>;

fn text(function: &str, bytes: Vec<u8>) -> Res<ImmutableString> {
    String::from_utf8(bytes)
        .map(ImmutableString::from)
        .map_err(|_| api_error(format!("digest::{function}: the decoded bytes are not UTF-8 text")))
}

/// Tarantool's `digest.crc32`: the Castagnoli polynomial (reflected 0x82F63B78), initial value
/// 0xFFFFFFFF, no final XOR.
fn crc32c_tarantool(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    crc
}

/// Build the `digest` module.
pub(crate) fn module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("sha256_hex", |s: ImmutableString| {
        Ok(ImmutableString::from(hex::encode(sha2::Sha256::digest(s.as_bytes()))))
    });
    m.set_native_fn("sha1_hex", |s: ImmutableString| {
        Ok(ImmutableString::from(hex::encode(sha1::Sha1::digest(s.as_bytes()))))
    });
    m.set_native_fn("md5_hex", |s: ImmutableString| {
        Ok(ImmutableString::from(hex::encode(md5::Md5::digest(s.as_bytes()))))
    });
    m.set_native_fn("crc32", |s: ImmutableString| Ok(rhai::INT::from(crc32c_tarantool(s.as_bytes()))));
    m.set_native_fn("base64_encode", |s: ImmutableString| {
        Ok(ImmutableString::from(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())))
    });
    m.set_native_fn("base64_decode", |s: ImmutableString| -> Res<ImmutableString> {
        // Tarantool's base64_encode breaks lines: any whitespace inside is dropped.
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let trimmed = compact.as_str();
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        // The standard alphabet or the URL-safe one, padded or not.
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| URL_SAFE.decode(trimmed))
            .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
            .map_err(|e| api_error(format!("digest::base64_decode: not base64: {e}")))?;
        text("base64_decode", bytes)
    });
    m.set_native_fn("hex_encode", |s: ImmutableString| Ok(ImmutableString::from(hex::encode(s.as_bytes()))));
    m.set_native_fn("hex_decode", |s: ImmutableString| -> Res<ImmutableString> {
        let bytes = hex::decode(s.trim()).map_err(|e| api_error(format!("digest::hex_decode: not hex: {e}")))?;
        text("hex_decode", bytes)
    });
    m
}
