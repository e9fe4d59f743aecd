//! Input of writes, shared by both front doors: fields parsed into domain
//! values with DRF's validation messages (a JSON body for the API, a form
//! turned into the same JSON object for the console), query strings, and
//! the multipart poster form. Every field error is collected, so one answer
//! names all the fields that are wrong.
//!
//! - `events`, `tickets`: an event's and a ticket type's fields as sent.
//! - `posters`: the poster upload form.

pub mod events;
pub mod posters;
pub mod tickets;

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::{DomainError, FieldErrors};

pub const REQUIRED: &str = "This field is required.";
pub const NOT_NULL: &str = "This field may not be null.";
pub const INVALID_UUID: &str = "Must be a valid UUID.";
pub const NULL_CHARACTERS: &str = "Null characters are not allowed.";
pub const INVALID_DATETIME: &str = "Datetime has wrong format. Use one of these formats instead: \
     YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z], YYYY-MM-DD hh:mm[:ss].";

/// A JSON object being validated field by field.
pub struct Input {
    map: Map<String, Value>,
    /// PATCH semantics: absent fields are left alone instead of required.
    partial: bool,
    pub errors: FieldErrors,
}

/// Rules for a text field.
#[derive(Clone, Copy)]
pub struct Text {
    pub required: bool,
    pub max_len: usize,
    pub allow_blank: bool,
}

impl Text {
    pub const fn required(max_len: usize) -> Self {
        Text {
            required: true,
            max_len,
            allow_blank: false,
        }
    }
    pub const fn optional(max_len: usize) -> Self {
        Text {
            required: false,
            max_len,
            allow_blank: true,
        }
    }
}

impl Input {
    pub fn new(map: Map<String, Value>, partial: bool) -> Self {
        Input {
            map,
            partial,
            errors: FieldErrors::default(),
        }
    }

    /// Whether `name` was sent as `null`.
    pub fn is_null(&self, name: &str) -> bool {
        matches!(self.map.get(name), Some(Value::Null))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The raw value of a field; records "required" / "null" errors.
    fn take(&mut self, name: &str, required: bool) -> Option<Value> {
        match self.map.get(name) {
            None => {
                if required && !self.partial {
                    self.errors.add(name, REQUIRED);
                }
                None
            }
            Some(Value::Null) => {
                self.errors.add(name, NOT_NULL);
                None
            }
            Some(v) => Some(v.clone()),
        }
    }

    pub fn text(&mut self, name: &str, rules: Text) -> Option<String> {
        let value = self.take(name, rules.required)?;
        let s = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => {
                self.errors.add(name, "Not a valid string.");
                return None;
            }
        };
        if s.contains('\0') {
            self.errors.add(name, NULL_CHARACTERS);
            return None;
        }
        let s = s.trim().to_string();
        if s.is_empty() && !rules.allow_blank {
            self.errors.add(name, "This field may not be blank.");
            return None;
        }
        if s.chars().count() > rules.max_len {
            self.errors.add(
                name,
                format!(
                    "Ensure this field has no more than {} characters.",
                    rules.max_len
                ),
            );
            return None;
        }
        Some(s)
    }

    /// A password: not trimmed, never echoed.
    pub fn password(&mut self, name: &str, required: bool) -> Option<String> {
        match self.take(name, required)? {
            Value::String(s) if s.is_empty() => {
                self.errors.add(name, "This field may not be blank.");
                None
            }
            Value::String(s) if s.contains('\0') => {
                self.errors.add(name, NULL_CHARACTERS);
                None
            }
            Value::String(s) if s.chars().count() > 4096 => {
                self.errors
                    .add(name, "Ensure this field has no more than 4096 characters.");
                None
            }
            Value::String(s) => Some(s),
            _ => {
                self.errors.add(name, "Not a valid string.");
                None
            }
        }
    }

    pub fn integer(&mut self, name: &str, required: bool, min: i64, max: i64) -> Option<i64> {
        let value = self.take(name, required)?;
        let parsed = match &value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let Some(n) = parsed else {
            self.errors.add(name, "A valid integer is required.");
            return None;
        };
        if n < min {
            self.errors.add(
                name,
                format!("Ensure this value is greater than or equal to {min}."),
            );
            return None;
        }
        if n > max {
            self.errors.add(
                name,
                format!("Ensure this value is less than or equal to {max}."),
            );
            return None;
        }
        Some(n)
    }

    pub fn uuid(&mut self, name: &str, required: bool) -> Option<Uuid> {
        let value = self.take(name, required)?;
        match value.as_str().and_then(|s| Uuid::parse_str(s.trim()).ok()) {
            Some(id) => Some(id),
            None => {
                self.errors.add(name, INVALID_UUID);
                None
            }
        }
    }

    /// A text that may be `null` or blank (then `Some(None)`); `None` when
    /// absent. Trimmed.
    pub fn optional_text(&mut self, name: &str, max_len: usize) -> Option<Option<String>> {
        if let Some(Value::Null) = self.map.get(name) {
            return Some(None);
        }
        let text = self.text(
            name,
            Text {
                required: false,
                max_len,
                allow_blank: true,
            },
        )?;
        let text = text.trim();
        Some((!text.is_empty()).then(|| text.to_owned()))
    }

    /// An IANA time zone name (`Asia/Jakarta`) that may be `null` (back to
    /// the server's `TIME_ZONE`: `Some(None)`); `None` when absent.
    pub fn time_zone(&mut self, name: &str) -> Option<Option<String>> {
        if let Some(Value::Null) = self.map.get(name) {
            return Some(None);
        }
        let text = self.text(
            name,
            Text {
                required: false,
                max_len: 64,
                allow_blank: false,
            },
        )?;
        match text.parse::<Tz>() {
            Ok(zone) => Some(Some(zone.name().to_owned())),
            Err(_) => {
                self.errors.add(
                    name,
                    format!(
                        "\"{text}\" is not a time zone: use an IANA name such as Asia/Jakarta."
                    ),
                );
                None
            }
        }
    }

    /// An integer that may be `null` or blank (a form's empty field): then
    /// `Some(None)`; `None` when absent (or wrong: its error recorded).
    pub fn nullable_integer(&mut self, name: &str, min: i64, max: i64) -> Option<Option<i64>> {
        match self.map.get(name) {
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(_) => self.integer(name, false, min, max).map(Some),
            None => None,
        }
    }

    /// A UUID that may be `null` (`Some(None)`); `None` when absent.
    pub fn nullable_uuid(&mut self, name: &str) -> Option<Option<Uuid>> {
        match self.map.get(name) {
            Some(Value::Null) => Some(None),
            Some(_) => self.uuid(name, false).map(Some),
            None => None,
        }
    }

    /// A list of strings (DRF's `ListField(child=CharField())`).
    pub fn strings(&mut self, name: &str, required: bool) -> Option<Vec<String>> {
        let value = self.take(name, required)?;
        let Value::Array(items) = value else {
            self.errors.add(
                name,
                format!(
                    "Expected a list of items but got type \"{}\".",
                    json_type(&value)
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) if !s.contains('\0') => out.push(s),
                _ => {
                    self.errors.add(name, "Not a valid string.");
                    return None;
                }
            }
        }
        Some(out)
    }

    pub fn datetime(&mut self, name: &str, required: bool, tz: Tz) -> Option<DateTime<Utc>> {
        let value = self.take(name, required)?;
        match value.as_str().and_then(|s| parse_datetime(s, tz)) {
            Some(dt) => Some(dt),
            None => {
                self.errors.add(name, INVALID_DATETIME);
                None
            }
        }
    }

    /// A boolean: JSON `true`/`false`, or DRF's spellings (`"true"`, `"1"`,
    /// `"yes"`, `"on"` and their opposites).
    pub fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        let value = self.take(name, required)?;
        let parsed = match &value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
                "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.errors.add(name, "Must be a valid boolean.");
        }
        parsed
    }

    /// Money with at most two decimals, ≥ 0, in minor units.
    pub fn money(&mut self, name: &str, required: bool) -> Option<i64> {
        let value = self.take(name, required)?;
        match parse_money(&value) {
            Ok(minor) => Some(minor),
            Err(message) => {
                self.errors.add(name, message);
                None
            }
        }
    }

    /// One of `choices`, case-insensitively; returned lower-cased. `aliases`
    /// maps accepted spellings to their canonical value.
    pub fn choice(
        &mut self,
        name: &str,
        required: bool,
        choices: &[&str],
        aliases: &[(&str, &str)],
    ) -> Option<String> {
        let value = self.take(name, required)?;
        let raw = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match canonical_choice(&raw, choices, aliases) {
            Some(c) => Some(c),
            None => {
                self.errors
                    .add(name, format!("\"{raw}\" is not a valid choice."));
                None
            }
        }
    }

    /// `Ok` when no field was wrong, else every field's errors.
    pub fn finish(self) -> Result<(), DomainError> {
        self.errors.into_result()
    }
}

/// `raw` matched case-insensitively against `choices` and `aliases`.
pub fn canonical_choice(raw: &str, choices: &[&str], aliases: &[(&str, &str)]) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    if let Some(c) = choices.iter().find(|c| **c == lower) {
        return Some((*c).to_string());
    }
    aliases
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map(|(_, canonical)| (*canonical).to_string())
}

/// RFC 3339, or a naive `YYYY-MM-DD[T ]HH:MM[:SS[.f]]` in the configured zone.
/// Truncated to microseconds, the precision stored. Only instants of years
/// 1 to 9999 in UTC (API.md §12): beyond, RFC 3339 cannot write them back.
pub fn parse_datetime(raw: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let parsed = parse_any_datetime(raw, tz)?;
    (1..=9999).contains(&parsed.year()).then_some(parsed)
}

fn parse_any_datetime(raw: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    let parsed = if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        dt.with_timezone(&Utc)
    } else {
        let naive = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())?;
        tz.from_local_datetime(&naive)
            .earliest()?
            .with_timezone(&Utc)
    };
    parsed.with_nanosecond(parsed.nanosecond() / 1000 * 1000)
}

/// UTC, RFC 3339 with `Z`, fractional seconds only when present.
pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The largest amount accepted: 12 digits, 2 of them decimals.
const MAX_MONEY_MINOR: i64 = 999_999_999_999;

/// A JSON number or numeric string with at most two decimals → minor units.
pub fn parse_money(value: &Value) -> Result<i64, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err("A valid number is required.".into()),
    };
    let minor = decimal_to_minor(&text)?;
    if minor < 0 {
        return Err("Ensure this value is greater than or equal to 0.".into());
    }
    if minor > MAX_MONEY_MINOR {
        return Err("Ensure that there are no more than 12 digits in total.".into());
    }
    Ok(minor)
}

fn decimal_to_minor(text: &str) -> Result<i64, String> {
    let invalid = || "A valid number is required.".to_string();
    if text.contains(['e', 'E']) {
        // Exponent notation (serde_json prints large floats this way).
        let f: f64 = text.parse().map_err(|_| invalid())?;
        if !f.is_finite() || f.abs() > 1e13 {
            return Err("Ensure that there are no more than 12 digits in total.".into());
        }
        let scaled = f * 100.0;
        if (scaled - scaled.round()).abs() > 1e-6 {
            return Err("Ensure that there are no more than 2 decimal places.".into());
        }
        return Ok(scaled.round() as i64);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > 2 {
        return Err("Ensure that there are no more than 2 decimal places.".into());
    }
    let int_trimmed = int_part.trim_start_matches('0');
    if int_trimmed.len() > 10 {
        return Err("Ensure that there are no more than 12 digits in total.".into());
    }
    let units: i64 = if int_trimmed.is_empty() {
        0
    } else {
        int_trimmed.parse().map_err(|_| invalid())?
    };
    let cents: i64 = format!("{frac_trimmed:0<2}")
        .parse()
        .map_err(|_| invalid())?;
    let minor = units * 100 + cents;
    Ok(if negative { -minor } else { minor })
}

/// Money in minor units as a JSON number (`200000`, `200000.5`).
pub use crate::db::audit::money_json;

/// A JSON value's type as Python names it (DRF's messages).
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A query string as ordered pairs.
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        QueryParams(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The parameters that select rows (all but paging and ordering), in a
    /// canonical order: what a list's total count depends on.
    pub fn filter_key(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "page" | "page_size" | "ordering"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.sort_unstable();
        let mut key = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            key.append_pair(k, v);
        }
        key.finish()
    }

    /// The last non-empty value of a parameter (Django's `QueryDict.get`
    /// returns the last; an empty filter is no filter).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A free-text filter (Django's `CharField` refuses NUL, and so does
    /// PostgreSQL).
    pub fn text(&self, name: &str, errors: &mut FieldErrors) -> Option<&str> {
        let raw = self.get(name)?;
        if raw.contains('\0') {
            errors.add(name, NULL_CHARACTERS);
            return None;
        }
        Some(raw)
    }

    pub fn uuid(&self, name: &str, errors: &mut FieldErrors) -> Option<Uuid> {
        let raw = self.get(name)?;
        match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add(name, INVALID_UUID);
                None
            }
        }
    }

    pub fn datetime(&self, name: &str, tz: Tz, errors: &mut FieldErrors) -> Option<DateTime<Utc>> {
        let raw = self.get(name)?;
        match parse_datetime(raw, tz) {
            Some(dt) => Some(dt),
            None => {
                // Also accept a plain date, as django-filter does.
                if let Ok(date) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    && let Some(dt) = date
                        .and_hms_opt(0, 0, 0)
                        .and_then(|n| tz.from_local_datetime(&n).earliest())
                {
                    return Some(dt.with_timezone(&Utc));
                }
                errors.add(name, "Enter a valid date/time.");
                None
            }
        }
    }

    pub fn choice(
        &self,
        name: &str,
        choices: &[&str],
        aliases: &[(&str, &str)],
        errors: &mut FieldErrors,
    ) -> Option<String> {
        let raw = self.get(name)?;
        match canonical_choice(raw, choices, aliases) {
            Some(c) => Some(c),
            None => {
                errors.add(
                    name,
                    format!(
                        "Select a valid choice. {raw} is not one of the available choices: {}.",
                        choices.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// `ordering`: one or more of `fields`, comma-separated, each optionally
    /// prefixed `-` (DRF's `OrderingFilter`). Returns the fields and whether
    /// each is descending; none given means `default` (if any).
    pub fn ordering<'a>(
        &self,
        fields: &[&'a str],
        default: &'a str,
        errors: &mut FieldErrors,
    ) -> Vec<(&'a str, bool)> {
        let fallback = || {
            if default.is_empty() {
                Vec::new()
            } else {
                vec![(default, false)]
            }
        };
        let Some(raw) = self.get("ordering") else {
            return fallback();
        };
        let mut chosen = Vec::new();
        for term in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (name, descending) = match term.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (term, false),
            };
            match fields.iter().find(|f| **f == name) {
                Some(f) if !chosen.iter().any(|(c, _)| c == f) => chosen.push((*f, descending)),
                Some(_) => {}
                None => {
                    errors.add(
                        "ordering",
                        format!(
                            "Select a valid choice. {term} is not one of the available choices: {}.",
                            fields.join(", ")
                        ),
                    );
                    return fallback();
                }
            }
        }
        if chosen.is_empty() {
            fallback()
        } else {
            chosen
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_parsing() {
        assert_eq!(parse_money(&json!(200000)), Ok(20_000_000));
        assert_eq!(parse_money(&json!(200000.5)), Ok(20_000_050));
        assert_eq!(parse_money(&json!("19.99")), Ok(1999));
        assert_eq!(parse_money(&json!(0)), Ok(0));
        assert!(parse_money(&json!(-1)).is_err());
        assert!(parse_money(&json!(1.234)).is_err());
        assert!(parse_money(&json!("abc")).is_err());
        assert!(parse_money(&json!(true)).is_err());
        assert_eq!(money_json(20_000_050), json!(200000.5));
        assert_eq!(money_json(20_000_000), json!(200000));
    }

    #[test]
    fn datetimes_outside_years_1_to_9999_in_utc_are_refused() {
        let utc = chrono_tz::UTC;
        assert!(parse_datetime("9999-12-31T23:59:59Z", utc).is_some());
        assert!(parse_datetime("9999-12-31T23:59:59-14:00", utc).is_none());
        assert!(parse_datetime("0001-01-01T00:00:00+01:00", utc).is_none());
        assert!(parse_datetime("0001-01-01T00:00:00Z", utc).is_some());
    }

    #[test]
    fn datetimes() {
        let utc = Tz::UTC;
        let want = "2025-08-08T16:32:00Z";
        for raw in [
            "2025-08-08T16:32:00Z",
            "2025-08-08T23:32:00+07:00",
            "2025-08-08 16:32",
            "2025-08-08 16:32:00",
            "2025-08-08T16:32",
        ] {
            let dt = parse_datetime(raw, utc).expect(raw);
            assert_eq!(format_datetime(&dt), want, "{raw}");
        }
        let jakarta: Tz = "Asia/Jakarta".parse().expect("tz");
        let dt = parse_datetime("2025-08-08 23:32", jakarta).expect("naive");
        assert_eq!(format_datetime(&dt), want);
        assert!(parse_datetime("08/08/2025", utc).is_none());
        assert!(parse_datetime("2025-13-01 10:00", utc).is_none());
    }
}
