//! Charts drawn by the server as inline SVG: no script, no external asset.
//! Colours come from the stylesheet through classes; every chart has a
//! `<title>` and the page puts its numbers in a `<details>` table too.

use std::fmt::Write;

use chrono::NaiveDate;

/// Text for SVG markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round top for the axis: 1, 2, 5 × 10ⁿ at or above `max` (at least 1).
fn axis_top(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= max.max(1) {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Registrations per day: one bar per day, the day's number above bars
/// that have one, dates under the last bar and every seventh before it.
/// The scale is written on both sides: on a phone the chart scrolls and
/// opens at today, its right end, where the right-hand scale is.
pub fn per_day(title: &str, days: &[(NaiveDate, u64)]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 36.0;
    const RIGHT: f64 = 32.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 16.0;
    let top = axis_top(days.iter().map(|(_, n)| *n).max().unwrap_or(0));
    let plot_h = H - BOTTOM - TOP;
    let slot = (W - LEFT - RIGHT) / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"chart-days-title\" \
         preserveAspectRatio=\"xMidYMid meet\"><title id=\"chart-days-title\">{}</title>",
        escape(title)
    );
    // The axis: 0 and the top, with hairlines, on both sides.
    for (value, y) in [(0, TOP + plot_h), (top, TOP)] {
        let _ = write!(
            svg,
            "<line class=\"gridline\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{value}</text>\
             <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"start\">{value}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            W - RIGHT + 6.0,
            y + 4.0
        );
    }
    for (i, (date, n)) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let h = plot_h * (*n as f64) / top as f64;
        let y = TOP + plot_h - h;
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\">\
             <title>{}: {n}</title></rect>",
            date.format("%a %-d %b")
        );
        if *n > 0 && slot >= 14.0 {
            let _ = write!(
                svg,
                "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>",
                x + bar / 2.0,
                y - 3.0
            );
        }
        if (days.len() - 1 - i).is_multiple_of(7) {
            // The last date ends at the bar's right edge, inside the chart.
            let (anchor, at) = if i + 1 == days.len() {
                ("end", x + bar)
            } else {
                ("middle", x + bar / 2.0)
            };
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{at:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                H - 6.0,
                date.format("%-d %b")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Sales per ticket type: a horizontal bar per ticket, sold against its
/// quota, "sold / quota" at the end.
pub fn ticket_sales(title: &str, tickets: &[(String, i64, i64)]) -> String {
    const W: f64 = 640.0;
    const ROW: f64 = 30.0;
    const LABEL: f64 = 180.0;
    const NUMBERS: f64 = 110.0;
    let h = ROW * tickets.len().max(1) as f64 + 8.0;
    let track = W - LABEL - NUMBERS;
    let mut svg = String::with_capacity(2048);
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-labelledby=\"chart-sales-title\">\
         <title id=\"chart-sales-title\">{}</title>",
        escape(title)
    );
    for (i, (name, sold, quota)) in tickets.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW;
        let share = if *quota > 0 {
            (*sold as f64 / *quota as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let label: String = if name.chars().count() > 24 {
            name.chars().take(23).chain(['…']).collect()
        } else {
            name.clone()
        };
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"0\" y=\"{:.1}\">{}</text>\
             <rect class=\"track\" x=\"{LABEL}\" y=\"{:.1}\" width=\"{track:.1}\" height=\"16\" rx=\"3\"/>\
             <rect class=\"bar\" x=\"{LABEL}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" rx=\"3\">\
             <title>{}: {sold} of {quota}</title></rect>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{sold} / {quota}</text>",
            y + 17.0,
            escape(&label),
            y + 4.0,
            y + 4.0,
            track * share,
            escape(name),
            LABEL + track + 8.0,
            y + 17.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_rounds_up_to_1_2_5() {
        assert_eq!(axis_top(0), 1);
        assert_eq!(axis_top(1), 1);
        assert_eq!(axis_top(3), 5);
        assert_eq!(axis_top(7), 10);
        assert_eq!(axis_top(11), 20);
        assert_eq!(axis_top(420), 500);
    }

    #[test]
    fn the_days_scale_is_on_both_sides() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("a date");
        let svg = per_day("t", &[(day, 3), (day, 7)]);
        assert_eq!(svg.matches(">10</text>").count(), 2, "{svg}");
        assert_eq!(svg.matches("text-anchor=\"start\">").count(), 2);
    }

    #[test]
    fn names_are_escaped_in_charts() {
        let svg = ticket_sales("Sales", &[("<VIP & \"friends\">".into(), 3, 10)]);
        assert!(svg.contains("&lt;VIP &amp; &quot;friends&quot;&gt;"));
        assert!(!svg.contains("<VIP"));
        let day = NaiveDate::from_ymd_opt(2027, 1, 10).unwrap_or_default();
        let svg = per_day("Per day", &[(day, 4)]);
        assert!(svg.contains(">4</text>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
