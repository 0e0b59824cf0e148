//! The one layer that checks the arguments JavaScript passes (a `TypeError` naming the
//! argument, never a trap: wasm-bindgen would read `'x'` as 0 and `-1` as 4294967295), and the
//! one shape of every error JavaScript receives (`Failure`: an `Error` with a `kind`).

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::generate::parse_seed;
use crate::inspect::{Ablate, Ablation};
use crate::{Error, Options};

/// An error as JavaScript receives it: an `Error` (or `TypeError`) with a `kind`.
pub struct Failure(JsValue);

impl Failure {
    pub(super) fn new(error: js_sys::Error, kind: &str) -> Failure {
        let _ = Reflect::set(&error, &"kind".into(), &kind.into());
        Failure(error.into())
    }

    pub(super) fn state(message: &str) -> Failure {
        Failure::new(js_sys::Error::new(message), "state")
    }

    pub(super) fn type_error(message: &str) -> Failure {
        Failure::new(js_sys::TypeError::new(message).into(), "type")
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::new(js_sys::Error::new(&err.to_string()), err.kind())
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message =
            js_sys::Reflect::get(&self.0, &"message".into()).ok().and_then(|m| m.as_string());
        write!(f, "{}", message.unwrap_or_default())
    }
}

impl From<Failure> for JsValue {
    fn from(failure: Failure) -> JsValue {
        failure.0
    }
}

pub(super) type Result<T> = std::result::Result<T, Failure>;

/// What `typeof value` says, for messages.
pub(super) fn type_of(value: &JsValue) -> String {
    value.js_typeof().as_string().unwrap_or_default()
}

/// A string argument (`undefined`/`null` = `default`), or a TypeError naming it.
pub(super) fn string(value: &JsValue, what: &str, default: &str) -> Result<String> {
    if value.is_undefined() || value.is_null() {
        return Ok(default.to_string());
    }
    value.as_string().ok_or_else(|| {
        Failure::type_error(&format!("{what} must be a string, not {}", type_of(value)))
    })
}

/// A whole-number argument (0 to 2^32 - 1), or a TypeError naming it: wasm-bindgen would
/// turn `'x'` into 0 and `-1` into 4294967295.
pub(super) fn whole(value: &JsValue, what: &str) -> Result<u32> {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n) => Ok(n as u32),
        _ => Err(Failure::type_error(&format!(
            "{what} must be a whole number from 0 to {}, not {}",
            u32::MAX,
            shown(value)
        ))),
    }
}

/// A JS value as a message shows it: a number as JS prints it (`NaN`, not JSON's `null`), a
/// string quoted, anything else by its type.
pub(super) fn shown(value: &JsValue) -> String {
    if let Some(n) = value.as_f64() {
        return match n {
            n if n.is_nan() => "NaN".into(),
            n if n.is_infinite() => if n > 0.0 { "Infinity" } else { "-Infinity" }.into(),
            n => format!("{n}"),
        };
    }
    if let Some(text) = value.as_string() {
        return format!("{text:?}");
    }
    type_of(value)
}

/// A byte count or offset from JS: a non-negative integer number.
pub(super) fn byte_count(value: f64, what: &str) -> Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53) {
        Ok(value as u64)
    } else {
        Err(Failure::type_error(&format!("{what} {value} is not a byte count")))
    }
}

/// A plain JS object of `fields`.
pub(super) fn object(fields: &[(&str, JsValue)]) -> Result<JsValue> {
    let object = js_sys::Object::new();
    for (key, value) in fields {
        Reflect::set(&object, &(*key).into(), value)
            .map_err(|_| Failure::state("cannot build the result object"))?;
    }
    Ok(object.into())
}

/// The generation options of a JS object (each optional; see [`Options`]).
pub(super) fn read_options(value: &JsValue) -> Result<Options> {
    let mut options = Options::DEFAULT;
    if value.is_undefined() || value.is_null() {
        return Ok(options);
    }
    if !value.is_object() {
        return Err(Failure::type_error(&format!(
            "options must be an object, not {}",
            type_of(value)
        )));
    }
    let field = |key: &str| Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let number = |key: &str| -> Result<Option<f64>> {
        let v = field(key);
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        v.as_f64().map(Some).ok_or_else(|| {
            Failure::type_error(&format!("options: {key} must be a number, not {}", type_of(&v)))
        })
    };
    if let Some(t) = number("temperature")? {
        options.temperature = t as f32;
    }
    if let Some(p) = number("topp")? {
        options.topp = p as f32;
    }
    // As run.c: below 1 (or NaN) means seq_len; anything past seq_len is seq_len too.
    if let Some(n) = number("steps")? {
        options.steps = if n >= 1.0 { n.min(u32::MAX as f64) as usize } else { 0 };
    }
    options.seed = seed(&field("seed"))?;
    Ok(options)
}

/// The `ablate` option of a JS options object: an array of `'L:H'`, `'L:attn'`, `'L:ffn'`
/// (as the CLI's `--ablate`), checked against the model's shape; missing: nothing switched off.
pub(super) fn read_ablation(value: &JsValue, c: &crate::Config) -> Result<Ablation> {
    let list = if value.is_object() {
        Reflect::get(value, &"ablate".into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    };
    ablation(&list, c)
}

/// An ablation list (`['1:2', '0:attn']`; undefined: none), checked against the model's shape.
pub(super) fn ablation(list: &JsValue, c: &crate::Config) -> Result<Ablation> {
    if list.is_undefined() || list.is_null() {
        return Ok(Ablation::NONE);
    }
    if !js_sys::Array::is_array(list) {
        return Err(Failure::type_error(&format!(
            "options: ablate must be an array of 'LAYER:HEAD', 'LAYER:attn' or 'LAYER:ffn', not {}",
            type_of(list)
        )));
    }
    let mut switches = Vec::new();
    for item in js_sys::Array::from(list).iter() {
        let spec = item.as_string().ok_or_else(|| {
            Failure::type_error(&format!("options: ablate: {} is not a string", type_of(&item)))
        })?;
        switches.push(Ablate::parse(&spec)?);
    }
    Ok(Ablation::new(&switches, c)?)
}

/// A seed from JS: a number (an integer), a BigInt or a string; negatives wrap to u64 as
/// run.c's `-s`; missing, 0 or empty = the time.
pub(super) fn seed(v: &JsValue) -> Result<u64> {
    if v.is_undefined() || v.is_null() {
        return Ok(0);
    }
    if let Some(text) = v.as_string() {
        return Ok(parse_seed(&text)?);
    }
    if let Some(n) = v.as_f64() {
        if n.is_finite() && n.fract() == 0.0 && n.abs() < 2f64.powi(63) {
            return Ok(n as i64 as u64);
        }
        return Err(
            Error::Options(format!("seed {n} is not an integer (empty or 0 = the time)")).into()
        );
    }
    if v.is_bigint() {
        let wrapped = js_sys::BigInt::as_uint_n(64.0, &v.clone().unchecked_into());
        let text = wrapped.to_string(10).map(String::from).unwrap_or_default();
        return Ok(parse_seed(&text)?);
    }
    Err(Failure::type_error(&format!(
        "options: seed must be a number, BigInt or string, not {}",
        type_of(v)
    )))
}
