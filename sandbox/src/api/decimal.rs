//! `decimal::*`: exact arithmetic on decimal numbers written as strings — the model's `Decimal`
//! values (`"12.50"`) — up to 28 significant digits. An argument is a decimal string or an
//! integer; a float is refused (it is not exact: pass `"0.1"`, not `0.1`). Results are strings
//! keeping the scale arithmetic gives (`add("1.10", "2.2")` is `"3.30"`).

use rhai::{Dynamic, EvalAltResult, ImmutableString, Module, INT};
use rust_decimal::{Decimal, RoundingStrategy};
use std::cmp::Ordering;

use crate::error::api_error;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The most digits after the point `round` and `div` take.
const MAX_SCALE: INT = 28;

fn arg(function: &str, value: &Dynamic) -> Res<Decimal> {
    if let Some(text) = value.read_lock::<ImmutableString>() {
        let trimmed = text.trim();
        // Exactly as written (more than 28 digits is refused, not rounded); no digit separators.
        let parsed = if trimmed.contains('_') {
            Err("digit separators are not allowed".to_string())
        } else {
            Decimal::from_str_exact(trimmed).map_err(|e| e.to_string())
        };
        return parsed
            .map_err(|e| api_error(format!("decimal::{function}: {:?} is not a decimal number: {e}", text.as_str())));
    }
    if let Ok(n) = value.as_int() {
        return Ok(Decimal::from(n));
    }
    if value.is_float() {
        return Err(api_error(format!(
            "decimal::{function}: {value} is a float, which is not exact: pass the decimal as a string (\"{value}\")"
        )));
    }
    Err(api_error(format!("decimal::{function}: expected a decimal string or an integer, got {}", value.type_name())))
}

/// A result as text; zero is never negative (`-0`).
fn text(mut d: Decimal) -> ImmutableString {
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    d.to_string().into()
}

fn out(function: &str, result: Option<Decimal>) -> Res<ImmutableString> {
    result
        .map(text)
        .ok_or_else(|| api_error(format!("decimal::{function}: the result is out of range (28 significant digits)")))
}

fn scale_arg(function: &str, scale: INT) -> Res<u32> {
    if (0..=MAX_SCALE).contains(&scale) {
        Ok(scale as u32)
    } else {
        Err(api_error(format!("decimal::{function}: the scale must be 0 to {MAX_SCALE}, got {scale}")))
    }
}

fn binary(m: &mut Module, name: &'static str, op: fn(Decimal, Decimal) -> Option<Decimal>) {
    m.set_native_fn(name, move |a: Dynamic, b: Dynamic| out(name, op(arg(name, &a)?, arg(name, &b)?)));
}

fn div(a: Decimal, b: Decimal) -> Res<Decimal> {
    if b.is_zero() {
        return Err(api_error("decimal::div: division by zero"));
    }
    a.checked_div(b).ok_or_else(|| api_error("decimal::div: the result is out of range (28 significant digits)"))
}

/// Build the `decimal` module.
pub(crate) fn module() -> Module {
    let mut m = Module::new();
    binary(&mut m, "add", Decimal::checked_add);
    binary(&mut m, "sub", Decimal::checked_sub);
    binary(&mut m, "mul", Decimal::checked_mul);
    m.set_native_fn("div", |a: Dynamic, b: Dynamic| -> Res<ImmutableString> {
        Ok(text(div(arg("div", &a)?, arg("div", &b)?)?.normalize()))
    });
    m.set_native_fn("div", |a: Dynamic, b: Dynamic, scale: INT| -> Res<ImmutableString> {
        let quotient = div(arg("div", &a)?, arg("div", &b)?)?;
        let scale = scale_arg("div", scale)?;
        let mut rounded = quotient.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
        // Written with exactly `scale` digits after the point, as `round` writes.
        rounded.rescale(scale);
        Ok(text(rounded))
    });
    m.set_native_fn("rem", |a: Dynamic, b: Dynamic| -> Res<ImmutableString> {
        let (a, b) = (arg("rem", &a)?, arg("rem", &b)?);
        if b.is_zero() {
            return Err(api_error("decimal::rem: division by zero"));
        }
        out("rem", a.checked_rem(b))
    });
    m.set_native_fn("round", |a: Dynamic, scale: INT| -> Res<ImmutableString> {
        let scale = scale_arg("round", scale)?;
        let rounded = arg("round", &a)?.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
        // Written with exactly `scale` digits after the point.
        let mut rounded = rounded;
        rounded.rescale(scale);
        Ok(text(rounded))
    });
    m.set_native_fn("cmp", |a: Dynamic, b: Dynamic| -> Res<INT> {
        Ok(match arg("cmp", &a)?.cmp(&arg("cmp", &b)?) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        })
    });
    m.set_native_fn("abs", |a: Dynamic| -> Res<ImmutableString> { Ok(text(arg("abs", &a)?.abs())) });
    m.set_native_fn("neg", |a: Dynamic| -> Res<ImmutableString> { Ok(text(-arg("neg", &a)?)) });
    m.set_native_fn("is_decimal", |a: Dynamic| -> Res<bool> {
        Ok((a.is_string() || a.is_int()) && arg("is_decimal", &a).is_ok())
    });
    m
}
