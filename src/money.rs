//! Money as people read it: minor units (cents) written with thousands
//! separators and the configured currency label. Used by the pages, the
//! mails and the messages of the rules alike.

/// Digits grouped by three with commas: `10,000`.
pub fn group_digits(digits: &str) -> String {
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// Money in minor units as people read it: thousands separators, two
/// decimals only when there are cents (`150,000`, `12.50`).
pub fn money(minor: i64) -> String {
    let units = (minor / 100).unsigned_abs();
    let cents = (minor % 100).abs();
    let sign = if minor < 0 { "-" } else { "" };
    let grouped = group_digits(&units.to_string());
    if cents == 0 {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{cents:02}")
    }
}

/// An amount with a currency label: `IDR 150,000`.
pub fn amount(currency: &str, minor: i64) -> String {
    format!("{currency} {}", money(minor))
}
