//! Default values: a field's `default:` checked against its column type (integer ranges,
//! string lengths, dates, times, UUIDs, decimals that fit, enum values) and `unsigned`.

use serde_yaml::Value;

use super::context::{Kind, Validator, describe};
use crate::ir::{DefaultValue, FieldType};
use crate::parse::{FieldDef, join};
use crate::type_names;

impl Validator<'_> {
    /// The `default:` of a column field (`None` without one, or when it is invalid: reported).
    pub(super) fn field_default(
        &mut self,
        model: &str,
        name: &str,
        path: &str,
        def: &FieldDef,
        kind: &Kind,
    ) -> Option<DefaultValue> {
        let (Kind::Column(ty), Some(value)) = (kind, &def.default) else {
            return None;
        };
        let field = format!("{} field `{model}.{name}`", def.ty.as_deref().unwrap_or("?"));
        let default = self.default_value(ty, &field, value, &join(path, "default"));
        if def.unsigned == Some(true) && matches!(default, Some(DefaultValue::Int(n)) if n < 0) {
            let pos = self.p.value_or_up(&join(path, "default"));
            self.err(
                "schema::invalid_default",
                pos,
                format!("invalid default for {field}: it is `unsigned`, the default is negative"),
                "negative",
            )
            .set_help("give a default of 0 or more");
            return None;
        }
        default
    }

    /// A `default:` checked against the column type `ty`; reports one that does not fit.
    fn default_value(&mut self, ty: &FieldType, field: &str, value: &Value, path: &str) -> Option<DefaultValue> {
        match check_default(ty, value) {
            Ok(v) => Some(v),
            Err((message, help)) => {
                let pos = self.p.value_or_up(path);
                let e = self.err(
                    "schema::invalid_default",
                    pos,
                    format!("invalid default for {field}: {message}"),
                    "invalid default",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                None
            }
        }
    }
}

type DefaultError = (String, Option<String>);

/// Checks a `default:` against the column type.
fn check_default(ty: &FieldType, value: &Value) -> Result<DefaultValue, DefaultError> {
    let int_in = |lo: i64, hi: i64| -> Result<DefaultValue, DefaultError> {
        let what = type_names::of(ty).name;
        match value {
            Value::Number(n) if !n.is_f64() => match n.as_i64() {
                Some(i) if (lo..=hi).contains(&i) => Ok(DefaultValue::Int(i)),
                _ => Err((format!("{n} is out of range for {what} ({lo}..={hi})"), None)),
            },
            _ => Err((format!("expected an integer, found {}", describe(value)), None)),
        }
    };
    let string = |check: &dyn Fn(&str) -> Result<(), DefaultError>| -> Result<DefaultValue, DefaultError> {
        match value {
            Value::String(s) => check(s).map(|()| DefaultValue::Str(s.clone())),
            other => Err((
                format!("expected a string, found {}", describe(other)),
                Some("quote the value to make it a string, e.g. `default: \"1\"`".into()),
            )),
        }
    };
    // A string in a fixed format (`is`), described as `what` with `hint` when it is not.
    let formatted = |is: fn(&str) -> bool, what: &str, hint: &str| {
        string(&|s| match is(s) {
            true => Ok(()),
            false => Err((format!("`{s}` is not {what}"), Some(hint.into()))),
        })
    };
    // A string of at most `limit` characters (`max_length`, or a `char`'s `length`).
    let at_most = |limit: u32| {
        string(&|s| {
            let n = s.chars().count();
            match n > limit as usize {
                true => Err((
                    format!("the string has {n} characters, more than `max_length` ({limit})"),
                    None,
                )),
                false => Ok(()),
            }
        })
    };
    match ty {
        FieldType::SmallInt => int_in(i16::MIN.into(), i16::MAX.into()),
        FieldType::Int => int_in(i32::MIN.into(), i32::MAX.into()),
        FieldType::PositiveInt => int_in(0, i32::MAX.into()),
        FieldType::BigInt => int_in(i64::MIN, i64::MAX),
        FieldType::Bool => match value {
            Value::Bool(b) => Ok(DefaultValue::Bool(*b)),
            other => Err((format!("expected `true` or `false`, found {}", describe(other)), None)),
        },
        FieldType::Float => match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => Ok(DefaultValue::Float(f)),
                _ => Err((format!("{n} is not a finite number"), None)),
            },
            other => Err((format!("expected a number, found {}", describe(other)), None)),
        },
        FieldType::String { max_length } => at_most(*max_length),
        FieldType::Text => string(&|_| Ok(())),
        FieldType::Uuid => formatted(is_uuid, "a UUID", "write it as 8-4-4-4-12 hex digits"),
        FieldType::Date => formatted(is_date, "a date", "write dates as `YYYY-MM-DD`"),
        FieldType::Time => formatted(is_time, "a time", "write times as `HH:MM:SS` (optionally `.ffffff`)"),
        FieldType::DateTime if value.as_str() == Some("now") => Ok(DefaultValue::Now),
        FieldType::DateTime => formatted(
            is_datetime,
            "a date and time",
            "write it as RFC 3339, e.g. `2024-01-31T12:00:00Z`, or `now` for the time of the insert",
        ),
        FieldType::Char { length } => at_most(*length),
        FieldType::Enum(e) => string(&|s| {
            if e.values.iter().any(|v| v.value == s) {
                Ok(())
            } else {
                let listed: Vec<&str> = e.values.iter().map(|v| v.value.as_str()).collect();
                Err((
                    format!("`{s}` is not one of the values"),
                    Some(format!("valid values: {}", listed.join(", "))),
                ))
            }
        }),
        FieldType::Decimal { precision, scale } => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                other => return Err((format!("expected a number, found {}", describe(other)), None)),
            };
            match decimal_digits(&text) {
                Some((whole, fraction)) if whole <= precision - scale && fraction <= *scale => {
                    Ok(DefaultValue::Decimal(at_scale(&text, *scale)))
                }
                Some(_) => Err((
                    format!("{text} does not fit `precision: {precision}, scale: {scale}`"),
                    Some(format!(
                        "at most {} digits before the point and {scale} after it",
                        precision - scale
                    )),
                )),
                None => Err((
                    format!("`{text}` is not a decimal number"),
                    Some("write it as digits with an optional sign and point, e.g. `default: 9.99` or `default: \"0.10\"`".into()),
                )),
            }
        }
        FieldType::Bytes | FieldType::Json => Err((
            "defaults are not supported for this type".into(),
            Some("remove `default:`; set the value when inserting".into()),
        )),
    }
}

/// The digits before and after the point of a plain decimal number (`-12.50` → (2, 2)),
/// leading zeros of the whole part not counted; `None` if it is not one.
fn decimal_digits(text: &str) -> Option<(u32, u32)> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    Some((whole.trim_start_matches('0').len() as u32, fraction.len() as u32))
}

/// A plain decimal number written with exactly `scale` digits after the point (`9.9` →
/// `9.90` at scale 2), as the database stores it: SQLite keeps a decimal's text (see
/// `ddl::sql_type`), so a default must be the text generated code binds for that number.
fn at_scale(text: &str, scale: u32) -> String {
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole = if whole.is_empty() { "0" } else { whole };
    if scale == 0 {
        return format!("{sign}{whole}");
    }
    format!("{sign}{whole}.{fraction:0<width$}", width = scale as usize)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return false };
    let (Some(year), Some(month), Some(day)) = (digits(y), digits(m), digits(d)) else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || !(1..=12).contains(&month) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days).contains(&day)
}

fn is_time(s: &str) -> bool {
    let (main, fraction) = match s.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (s, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || f.len() > 9 || digits(f).is_none()) {
        return false;
    }
    let parts: Vec<&str> = main.split(':').collect();
    let [h, m, sec] = parts.as_slice() else { return false };
    [h, m, sec].iter().all(|p| p.len() == 2)
        && digits(h).is_some_and(|h| h < 24)
        && digits(m).is_some_and(|m| m < 60)
        && digits(sec).is_some_and(|s| s < 60)
}

fn is_datetime(s: &str) -> bool {
    if s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return false;
    }
    let (date, rest) = s.split_at(10);
    if !is_date(date) || !matches!(rest.as_bytes()[0], b'T' | b't' | b' ') {
        return false;
    }
    let rest = &rest[1..];
    let (time, zone) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, None)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], Some(&rest[i + 1..]))
    } else {
        (rest, None)
    };
    let zone_ok = zone.is_none_or(|z| {
        let parts: Vec<&str> = z.split(':').collect();
        matches!(parts.as_slice(), [h, m] if h.len() == 2 && m.len() == 2
            && digits(h).is_some_and(|h| h < 24) && digits(m).is_some_and(|m| m < 60))
    });
    zone_ok && is_time(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_formats() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024-13-01"));
        assert!(is_time("23:59:59.123456"));
        assert!(!is_time("24:00:00"));
        assert!(is_datetime("2024-01-31T12:00:00Z"));
        assert!(is_datetime("2024-01-31 12:00:00+02:00"));
        assert!(is_datetime("2024-01-31T12:00:00.5"));
        assert!(!is_datetime("2024-01-31"));
        assert!(!is_datetime("2024-01-31Té2:00:00"));
        assert!(is_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"));
        assert!(!is_uuid("67e55044-10b1-426f-9247-bb680e5fe0cz"));
    }

    #[test]
    fn defaults() {
        let v = |s: &str| serde_yaml::from_str::<Value>(s).unwrap();
        assert_eq!(check_default(&FieldType::SmallInt, &v("7")), Ok(DefaultValue::Int(7)));
        assert!(check_default(&FieldType::SmallInt, &v("70000")).is_err());
        assert!(check_default(&FieldType::PositiveInt, &v("-1")).is_err());
        assert_eq!(check_default(&FieldType::Float, &v("1")), Ok(DefaultValue::Float(1.0)));
        assert!(check_default(&FieldType::Float, &v(".inf")).is_err());
        assert!(check_default(&FieldType::Bool, &v("yes")).is_err());
        assert!(check_default(&FieldType::String { max_length: 2 }, &v("abc")).is_err());
        assert_eq!(
            check_default(&FieldType::Text, &v("abc")),
            Ok(DefaultValue::Str("abc".into()))
        );
        assert!(check_default(&FieldType::Text, &v("5")).is_err());
        assert!(check_default(&FieldType::Json, &v("{}")).is_err());
        assert!(check_default(&FieldType::BigInt, &v("1.5")).is_err());
        let money = FieldType::Decimal { precision: 5, scale: 2 };
        assert_eq!(check_default(&money, &v("5")), Ok(DefaultValue::Decimal("5.00".into())));
        assert_eq!(
            check_default(&money, &v("\"+.5\"")),
            Ok(DefaultValue::Decimal("0.50".into()))
        );
        assert_eq!(
            check_default(&money, &v("-9.9")),
            Ok(DefaultValue::Decimal("-9.90".into()))
        );
        assert_eq!(
            check_default(&money, &v("\"-.5\"")),
            Ok(DefaultValue::Decimal("-0.50".into()))
        );
        assert!(check_default(&money, &v("1000")).is_err());
    }
}
