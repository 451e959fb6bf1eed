//! The two webhook body formats: Discord's and a generic JSON object.
//!
//! Discord rejects a whole message whose content or embed exceeds its limits (HTTP 400), which
//! would lose the notification, so every text is cut to its limit here instead.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use reqwest::Url;
use serde_json::{json, Map, Value};

use crate::event::{human_bytes, Notification};
use crate::NotifyError;

/// Discord's limit on a message's `content`, in characters.
pub const DISCORD_CONTENT_LIMIT: usize = 2000;
/// Discord's limit on an embed field's value.
const DISCORD_FIELD_LIMIT: usize = 1024;
/// The name shown as the sender of Discord messages.
const DISCORD_USERNAME: &str = "fintel";

/// Embed colours, so the kind of event is visible at a glance.
const GREEN: u32 = 0x2e_cc_71;
const RED: u32 = 0xe7_4c_3c;
const ORANGE: u32 = 0xe6_7e_22;
const YELLOW: u32 = 0xf1_c4_0f;

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"content": ..., "username": "fintel", "embeds": [...]}` for a Discord webhook.
    Discord,
    /// `{"event": ..., "batch_id": ..., "message": ..., "at": ..., ...}` for anything else.
    Json,
}

impl Format {
    /// The format a URL gets when none is configured: Discord for hosts of discord.com and
    /// discordapp.com (and their subdomains such as ptb.discord.com), JSON otherwise.
    pub fn detect(url: &Url) -> Format {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        let is_discord = ["discord.com", "discordapp.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")));
        if is_discord {
            Format::Discord
        } else {
            Format::Json
        }
    }

    /// The configuration value naming this format.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Discord => "discord",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = NotifyError;

    /// Accepts `discord` or `json`, in any case, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "discord" => Ok(Format::Discord),
            "json" => Ok(Format::Json),
            _ => Err(NotifyError::UnknownFormat(s.to_string())),
        }
    }
}

/// The JSON body of `event` in `format`, stamped with the instant `at` it happened.
pub fn render(format: Format, event: &Notification, at: Timestamp) -> Value {
    match format {
        Format::Discord => discord_body(event, at),
        Format::Json => json_body(event, at),
    }
}

fn json_body(event: &Notification, at: Timestamp) -> Value {
    let mut body = Map::new();
    body.insert("event".into(), json!(event.kind()));
    body.insert("batch_id".into(), json!(event.batch_id()));
    body.insert("message".into(), json!(event.summary()));
    body.insert("at".into(), json!(at.to_string()));
    match event {
        Notification::BatchCompleted {
            name,
            completed,
            skipped,
            failed,
            ..
        } => {
            body.insert("name".into(), json!(name));
            body.insert("completed".into(), json!(completed));
            body.insert("skipped".into(), json!(skipped));
            body.insert("failed".into(), json!(failed));
        }
        Notification::BatchStopped {
            reason,
            resume_command,
            ..
        } => {
            body.insert("reason".into(), json!(reason));
            body.insert("resume_command".into(), json!(resume_command));
        }
        Notification::KeysExhausted { reset_at, .. } => {
            body.insert("reset_at".into(), json!(reset_at.to_string()));
            let local = jiff::tz::TimeZone::system();
            body.insert(
                "reset_at_local".into(),
                json!(rfc3339_in(*reset_at, &local)),
            );
            body.insert(
                "reset_at_pacific".into(),
                json!(rfc3339_in(*reset_at, &fintel_time::pacific())),
            );
        }
        Notification::DiskLow {
            free_bytes,
            threshold_bytes,
            path,
        } => {
            body.insert("path".into(), json!(path.to_string_lossy()));
            body.insert("free_bytes".into(), json!(free_bytes));
            body.insert("threshold_bytes".into(), json!(threshold_bytes));
        }
        Notification::RepeatedFailures {
            count, last_reason, ..
        } => {
            body.insert("count".into(), json!(count));
            body.insert("last_reason".into(), json!(last_reason));
        }
        Notification::SharedProject { .. }
        | Notification::SpentElsewhere { .. }
        | Notification::Warning { .. } => {}
    }
    Value::Object(body)
}

/// `t` as an RFC 3339 string with the offset of `tz` at that instant, e.g.
/// `2026-03-09T00:05:00-07:00`.
fn rfc3339_in(t: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.display_with_offset(tz.to_offset(t)).to_string()
}

fn discord_body(event: &Notification, at: Timestamp) -> Value {
    let mut fields: Vec<(&str, String, bool)> = Vec::new();
    let batch = event.batch_id().map(str::to_string);
    let colour = match event {
        Notification::BatchCompleted {
            name,
            completed,
            skipped,
            failed,
            ..
        } => {
            if let Some(id) = &batch {
                let label = if name.is_empty() || name == id {
                    id.clone()
                } else {
                    format!("{name} ({id})")
                };
                fields.push(("Batch", label, false));
            }
            fields.push(("Completed", completed.to_string(), true));
            fields.push(("Skipped", skipped.to_string(), true));
            fields.push(("Failed", failed.to_string(), true));
            if *failed > 0 {
                ORANGE
            } else {
                GREEN
            }
        }
        Notification::BatchStopped {
            reason,
            resume_command,
            ..
        } => {
            push_batch(&mut fields, &batch);
            fields.push(("Reason", reason.clone(), false));
            fields.push(("Resume with", format!("`{resume_command}`"), false));
            RED
        }
        Notification::KeysExhausted { reset_at, .. } => {
            push_batch(&mut fields, &batch);
            // Discord renders <t:...> in each reader's own time zone, which is the one they
            // want; the Pacific time is the quota's own clock.
            let unix = reset_at.as_second();
            fields.push(("Resumes", format!("<t:{unix}:F> (<t:{unix}:R>)"), false));
            fields.push((
                "Reset (Pacific)",
                reset_at
                    .to_zoned(fintel_time::pacific())
                    .strftime("%Y-%m-%d %H:%M %Z")
                    .to_string(),
                false,
            ));
            YELLOW
        }
        Notification::DiskLow {
            free_bytes,
            threshold_bytes,
            path,
        } => {
            fields.push(("Path", path.display().to_string(), false));
            fields.push(("Free", human_bytes(*free_bytes), true));
            fields.push(("Minimum", human_bytes(*threshold_bytes), true));
            RED
        }
        Notification::RepeatedFailures {
            count, last_reason, ..
        } => {
            push_batch(&mut fields, &batch);
            fields.push(("Failures in a row", count.to_string(), true));
            fields.push(("Last failure", last_reason.clone(), false));
            ORANGE
        }
        Notification::SharedProject { .. }
        | Notification::SpentElsewhere { .. }
        | Notification::Warning { .. } => {
            push_batch(&mut fields, &batch);
            YELLOW
        }
    };
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|(name, value, inline)| {
            json!({
                "name": name,
                "value": truncate_chars(&value, DISCORD_FIELD_LIMIT),
                "inline": inline,
            })
        })
        .collect();
    json!({
        "content": truncate_chars(&event.summary(), DISCORD_CONTENT_LIMIT),
        "username": DISCORD_USERNAME,
        // A reason or a company name containing "@everyone" must not ping a whole server.
        "allowed_mentions": { "parse": [] },
        "embeds": [{
            "title": event.title(),
            "color": colour,
            "timestamp": at.to_string(),
            "fields": fields,
        }],
    })
}

fn push_batch(fields: &mut Vec<(&str, String, bool)>, batch: &Option<String>) {
    if let Some(id) = batch {
        fields.push(("Batch", id.clone(), false));
    }
}

/// `s` cut to at most `limit` characters, ending in `…` when cut. Discord counts characters,
/// not bytes, and an empty field value is rejected, so an empty string becomes `-`.
fn truncate_chars(s: &str, limit: usize) -> String {
    if s.is_empty() {
        return "-".to_string();
    }
    if s.chars().count() <= limit {
        return s.to_string();
    }
    let mut out: String = s.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        let long = "é".repeat(5000);
        let cut = truncate_chars(&long, DISCORD_CONTENT_LIMIT);
        assert_eq!(cut.chars().count(), DISCORD_CONTENT_LIMIT);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_chars("", 10), "-");
    }
}
