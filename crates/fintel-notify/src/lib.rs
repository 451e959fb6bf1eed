//! fintel-notify: webhook notifications for fintel batches (SPEC.md section 8).
//!
//! A batch runs unattended for weeks; a webhook tells its owner when it completes, stops, runs
//! out of daily quota on every key, runs low on disk, or keeps failing. Two body formats are
//! supported: Discord's webhook format and a generic JSON object for anything else (Slack
//! workflow triggers, ntfy, a home-made endpoint).
//!
//! The one rule of this crate: **a webhook can never affect the batch**. [`Notifier::notify`]
//! is synchronous, never fails and never waits: it puts the event on a bounded in-memory queue
//! that a background tokio task drains, with a per-request timeout and a couple of retries.
//! Failures are logged with `tracing::warn!` (the webhook URL masked, since Discord's URLs
//! carry a token) and otherwise ignored. A full queue drops its oldest event, so a dead webhook
//! cannot grow memory. [`Notifier::flush`] gives pending events a bounded moment before the
//! process exits.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fintel_notify::NotifyError> {
//! use fintel_notify::{Notification, Notifier};
//! use std::time::Duration;
//!
//! let notifier = Notifier::new("https://discord.com/api/webhooks/123/token", None)?;
//! notifier.notify(&Notification::Warning { batch_id: None, message: "hello".into() });
//! notifier.flush(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```

mod event;
mod format;
mod notifier;
mod url;

pub use event::{human_bytes, Notification};
pub use format::{render, Format, DISCORD_CONTENT_LIMIT};
pub use notifier::{
    Notifier, DEFAULT_QUEUE_CAPACITY, DEFAULT_RETRIES, DEFAULT_RETRY_DELAY, DEFAULT_TIMEOUT,
};
pub use url::{mask_url, mask_url_str};

/// Errors of setting a notifier up. Sending never returns an error: see [`Notifier::notify`].
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The URL is empty or only whitespace.
    #[error(
        "the webhook URL is empty; set it to the https:// address of a Discord webhook or of \
         an endpoint that accepts JSON POST requests, or leave it unset to send no notifications"
    )]
    EmptyUrl,
    /// The URL does not start with a scheme such as `https://`.
    #[error(
        "the webhook URL `{url}` has no scheme; it must start with https:// (or http://), \
         for example https://discord.com/api/webhooks/..."
    )]
    MissingScheme {
        /// The URL with its secret part masked.
        url: String,
    },
    /// The URL could not be parsed.
    #[error("the webhook URL `{url}` is not a valid URL ({reason}); it must look like https://host/path")]
    InvalidUrl {
        /// The URL with its secret part masked.
        url: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The URL uses a scheme other than http or https.
    #[error(
        "the webhook URL `{url}` uses the `{scheme}` scheme; only http:// and https:// webhooks \
         are supported"
    )]
    UnsupportedScheme {
        /// The URL with its secret part masked.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// The URL has no host name.
    #[error("the webhook URL `{url}` has no host; it must look like https://host/path")]
    MissingHost {
        /// The URL with its secret part masked.
        url: String,
    },
    /// The format value is neither `discord` nor `json`.
    #[error(
        "unknown webhook format `{0}`; use `discord` or `json`, or leave it unset to use \
         `discord` for discord.com webhook URLs and `json` for any other URL"
    )]
    UnknownFormat(String),
    /// A format was configured without a URL, which is almost certainly a mistake.
    #[error(
        "a webhook format (`{0}`) is set but no webhook URL; set the webhook URL too, or remove \
         the format"
    )]
    FormatWithoutUrl(String),
    /// The HTTP client could not be built (TLS initialisation failed).
    #[error("cannot set up the HTTP client for webhooks: {0}")]
    Client(String),
}
