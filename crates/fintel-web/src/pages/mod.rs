//! The pages: one module each, sharing the layout and small pieces defined here.

pub(crate) mod batch;
pub(crate) mod batches;
pub(crate) mod changes;
pub(crate) mod filing;
pub(crate) mod keys;
pub(crate) mod results;
pub(crate) mod screen;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use fintel_store::BatchState;
use jiff::Timestamp;
use maud::{html, Markup, DOCTYPE};

use crate::format;

/// Which part of the site a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Batches,
    Keys,
    Results,
    Screen,
    None,
}

/// The page around `body`. `refresh` makes the page live: its `data-live` parts are updated
/// every so many seconds (by the script, or by a refresh of the whole page without it).
pub(crate) fn layout(title: &str, nav: Nav, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · fintel" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" href="data:,";
                @if let Some(s) = refresh {
                    noscript { meta http-equiv="refresh" content=(s); }
                    script src="/static/live.js" defer {}
                }
            }
            body data-refresh=[refresh] {
                header.top {
                    a.brand href="/" { "fintel" }
                    nav {
                        a.here[nav == Nav::Batches] href="/" { "Batches" }
                        a.here[nav == Nav::Keys] href="/keys" { "Keys" }
                        a.here[nav == Nav::Results] href="/results" { "Results" }
                        a.here[nav == Nav::Screen] href="/screen" { "Screen" }
                    }
                    @if refresh.is_some() { span.updated #updated { "live" } }
                }
                main { (body) }
                footer {
                    "A window on the database: batches run in their own "
                    code { "fintel batch" } " processes, which closing this page never stops."
                }
            }
        }
    }
}

/// A page saying what went wrong.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        title,
        Nav::None,
        None,
        html! {
            h1 { (status.as_u16()) " " (title) }
            p.notice.error { (message) }
            p { a href="/" { "Back to the batches" } }
        },
    )
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        error_page(
            StatusCode::NOT_FOUND,
            &format!("There is no page at {}.", uri.path()),
        ),
    )
        .into_response()
}

/// A state as a coloured badge.
pub(crate) fn state_badge(state: &str) -> Markup {
    html! { span class={"state state-" (state)} { (state.replace('_', " ")) } }
}

pub(crate) fn batch_state_badge(state: BatchState) -> Markup {
    state_badge(state.as_str())
}

/// An instant in local time, with Pacific time and the exact instant on hover.
pub(crate) fn time(t: Timestamp) -> Markup {
    html! {
        time datetime=(format::rfc3339(t)) title={"Pacific: " (format::pacific(t))} { (format::local(t)) }
    }
}

/// An instant in local time and in Pacific time, both shown.
pub(crate) fn time_both(t: Timestamp) -> Markup {
    html! {
        time datetime=(format::rfc3339(t)) { (format::local(t)) }
        " (" (format::pacific(t)) ")"
    }
}

/// Said above the times of a page when the clock is simulated (`FINTEL_FAKE_CLOCK`, the demo):
/// every time shown is on that clock, not the wall clock.
pub(crate) fn simulated_clock_note(now: Timestamp) -> Markup {
    html! {
        p.notice.simulated {
            "Simulated clock (FINTEL_FAKE_CLOCK): every time on this page is simulated time; "
            "it reads " (time_both(now)) " now."
        }
    }
}

/// A link for a URL only when it is a web address (a stored `javascript:` URL stays text).
pub(crate) fn external_link(url: &str) -> Markup {
    let safe = url.starts_with("https://") || url.starts_with("http://");
    html! {
        @if safe { a href=(url) rel="noreferrer noopener" { (url) } } @else { code { (url) } }
    }
}

/// The path segment for a value: percent-encodes everything but unreserved characters.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_addresses_become_links_and_segments_are_encoded() {
        let js = external_link("javascript:alert(1)").into_string();
        assert!(!js.contains("href"), "{js}");
        let ok = external_link("https://www.sec.gov/a?b=1&c=2").into_string();
        assert!(
            ok.contains("href=\"https://www.sec.gov/a?b=1&amp;c=2\""),
            "{ok}"
        );
        assert_eq!(path_segment("BRK.B"), "BRK.B");
        assert_eq!(path_segment("a/b c<"), "a%2Fb%20c%3C");
    }
}
