//! The style sheet and the live-update script, served as files because the
//! Content-Security-Policy allows no inline style or script.

use axum::http::header;
use axum::response::IntoResponse;

const STYLE: &str = include_str!("../static/style.css");
const SCRIPT: &str = include_str!("../static/live.js");

pub(crate) async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}
