//! Charts as inline SVG drawn by the server: no script, no image requests, and nothing a
//! Content-Security-Policy has to allow. Colours come from the style sheet through classes.

use maud::{html, Markup};

use crate::format;
use crate::queries::ProgressPoint;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// More points than this are thinned out: the chart is a few hundred pixels wide.
const MAX_POINTS: usize = 400;

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// Tasks ended over time, against the batch's expected total.
pub(crate) fn progress(points: &[ProgressPoint], total: u64) -> Markup {
    if points.is_empty() {
        return html! { p.muted { "No task has ended yet." } };
    }
    let t0 = points[0].at.as_millisecond() as f64;
    let t1 = points[points.len() - 1].at.as_millisecond() as f64;
    let span = (t1 - t0).max(1.0);
    let ymax = (total.max(points[points.len() - 1].ended)).max(1) as f64;
    let x = |t: f64| LEFT + (t - t0) / span * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / ymax * (H - TOP - BOTTOM);
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    let mut line = String::new();
    let mut last = None;
    for (i, p) in points.iter().enumerate() {
        if i % step == 0 || i == points.len() - 1 {
            let (px, py) = (x(p.at.as_millisecond() as f64), y(p.ended as f64));
            line.push_str(&format!("{},{} ", fmt(px), fmt(py)));
            last = Some((px, py));
        }
    }
    let (lx, _) = last.unwrap_or((LEFT, H - BOTTOM));
    let area = format!(
        "{},{} {}{},{}",
        fmt(LEFT),
        fmt(H - BOTTOM),
        line,
        fmt(lx),
        fmt(H - BOTTOM)
    );
    let first = points[0].at;
    let end = points[points.len() - 1].at;
    let label = format!(
        "{} of {} tasks ended between {} and {}",
        points[points.len() - 1].ended,
        total,
        format::local(first),
        format::local(end)
    );
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(label) {
            title { (label) }
            line.total x1=(fmt(LEFT)) x2=(fmt(W - RIGHT)) y1=(fmt(y(total as f64))) y2=(fmt(y(total as f64))) {}
            line.axis x1=(fmt(LEFT)) x2=(fmt(W - RIGHT)) y1=(fmt(H - BOTTOM)) y2=(fmt(H - BOTTOM)) {}
            line.axis x1=(fmt(LEFT)) x2=(fmt(LEFT)) y1=(fmt(TOP)) y2=(fmt(H - BOTTOM)) {}
            polygon.area points=(area) {}
            polyline.line points=(line.trim_end()) {}
            text x=(fmt(LEFT - 6.0)) y=(fmt(y(total as f64) + 4.0)) text-anchor="end" { (format::thousands(total)) }
            text x=(fmt(LEFT - 6.0)) y=(fmt(H - BOTTOM + 4.0)) text-anchor="end" { "0" }
            text x=(fmt(LEFT)) y=(fmt(H - 8.0)) { (format::local(first)) }
            text x=(fmt(W - RIGHT)) y=(fmt(H - 8.0)) text-anchor="end" { (format::local(end)) }
        }
    }
}

/// One bar per quota day, with its count on hover and above the bar.
pub(crate) fn requests_per_day(days: &[(String, u64)], limit_per_day: Option<u64>) -> Markup {
    if days.is_empty() {
        return html! { p.muted { "No model request has been sent for this batch yet." } };
    }
    // The last 60 days at most: older ones would be slivers.
    let days = &days[days.len().saturating_sub(60)..];
    let max = days
        .iter()
        .map(|d| d.1)
        .chain(limit_per_day)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let slot = (W - LEFT - RIGHT) / days.len() as f64;
    let bar = (slot * 0.7).max(1.0);
    let y = |v: f64| H - BOTTOM - v / max * (H - TOP - BOTTOM);
    let label_every = days.len().div_ceil(8).max(1);
    let total: u64 = days.iter().map(|d| d.1).sum();
    let label = format!(
        "{} requests over {} quota day(s)",
        format::thousands(total),
        days.len()
    );
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(label) {
            title { (label) }
            line.axis x1=(fmt(LEFT)) x2=(fmt(W - RIGHT)) y1=(fmt(H - BOTTOM)) y2=(fmt(H - BOTTOM)) {}
            @if let Some(limit) = limit_per_day {
                line.total x1=(fmt(LEFT)) x2=(fmt(W - RIGHT)) y1=(fmt(y(limit as f64))) y2=(fmt(y(limit as f64))) {
                    title { "all configured buckets: " (limit) " requests per day" }
                }
                text x=(fmt(LEFT - 6.0)) y=(fmt(y(limit as f64) + 4.0)) text-anchor="end" { (format::thousands(limit)) }
            }
            text x=(fmt(LEFT - 6.0)) y=(fmt(H - BOTTOM + 4.0)) text-anchor="end" { "0" }
            @for (i, (day, n)) in days.iter().enumerate() {
                @let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
                rect.bar x=(fmt(x)) y=(fmt(y(*n as f64))) width=(fmt(bar)) height=(fmt(H - BOTTOM - y(*n as f64))) {
                    title { (day) ": " (n) " requests" }
                }
                @if days.len() <= 14 {
                    text x=(fmt(x + bar / 2.0)) y=(fmt(y(*n as f64) - 3.0)) text-anchor="middle" { (n) }
                }
                @if i % label_every == 0 {
                    text x=(fmt(x + bar / 2.0)) y=(fmt(H - 8.0)) text-anchor="middle" { (day.get(5..).unwrap_or(day)) }
                }
            }
        }
    }
}

/// A small line of values by year; gaps where a year has none.
pub(crate) fn sparkline(values: &[Option<f64>]) -> Markup {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    if known.len() < 2 {
        return html! {};
    }
    let (w, h, pad) = (100.0, 24.0, 3.0);
    let min = known.iter().copied().fold(f64::INFINITY, f64::min);
    let max = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = if max > min { max - min } else { 1.0 };
    let n = values.len().max(2) as f64 - 1.0;
    let point = |i: usize, v: f64| {
        (
            pad + i as f64 / n * (w - 2.0 * pad),
            h - pad - (v - min) / range * (h - 2.0 * pad),
        )
    };
    // Consecutive known values form runs; a missing year breaks the line.
    let mut runs: Vec<String> = vec![String::new()];
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let (px, py) = point(i, *v);
                if let Some(run) = runs.last_mut() {
                    run.push_str(&format!("{},{} ", fmt(px), fmt(py)));
                }
            }
            None => runs.push(String::new()),
        }
    }
    let last = values
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, v)| v.map(|v| point(i, v)));
    html! {
        svg.spark viewBox={"0 0 " (w) " " (h)} role="img" aria-label="trend over the years" {
            @for run in runs.iter().filter(|r| r.matches(' ').count() >= 2) {
                polyline.line points=(run.trim_end()) {}
            }
            @if let Some((px, py)) = last {
                circle.dot cx=(fmt(px)) cy=(fmt(py)) r="2" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[test]
    fn charts_draw_their_data_and_say_when_there_is_none() {
        let t: Timestamp = "2026-06-15T12:00:00Z".parse().unwrap();
        let points: Vec<ProgressPoint> = (0..1000)
            .map(|i| ProgressPoint {
                at: t + jiff::SignedDuration::from_secs(i * 60),
                ended: i as u64 + 1,
            })
            .collect();
        let svg = progress(&points, 2000).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("1000 of 2000 tasks ended"));
        let drawn = svg.matches(',').count();
        assert!(drawn < 2 * MAX_POINTS + 10, "thinned to the chart's width");
        assert!(progress(&[], 10).into_string().contains("No task"));

        let bars = requests_per_day(
            &[("2026-06-14".into(), 500), ("2026-06-15".into(), 120)],
            Some(500),
        )
        .into_string();
        assert_eq!(bars.matches("<rect").count(), 2);
        assert!(bars.contains("2026-06-15: 120 requests"));

        let spark = sparkline(&[Some(1.0), None, Some(3.0), Some(2.0)]).into_string();
        assert_eq!(
            spark.matches("<polyline").count(),
            1,
            "the lone first point draws no line"
        );
        assert!(sparkline(&[Some(1.0)]).into_string().is_empty());
    }
}
