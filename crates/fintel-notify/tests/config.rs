//! Setting a notifier up: format detection and parsing, URL checks, and that every error
//! message says what is wrong without printing the webhook's secret.

use fintel_notify::{Format, Notification, Notifier, NotifyError};

const SECRET: &str = "Zx9-SECRETtoken_abc";

fn discord_url() -> String {
    format!("https://discord.com/api/webhooks/112233445566/{SECRET}")
}

#[test]
fn format_is_detected_from_the_host() {
    let cases = [
        ("https://discord.com/api/webhooks/1/t", Format::Discord),
        ("https://DISCORD.com/api/webhooks/1/t", Format::Discord),
        ("https://discordapp.com/api/webhooks/1/t", Format::Discord),
        ("https://ptb.discord.com/api/webhooks/1/t", Format::Discord),
        (
            "https://canary.discordapp.com/api/webhooks/1/t",
            Format::Discord,
        ),
        ("https://example.com/hooks/fintel", Format::Json),
        ("https://notdiscord.com/api/webhooks/1/t", Format::Json),
        ("https://discord.com.example.net/hook", Format::Json),
        ("http://127.0.0.1:9000/discord.com", Format::Json),
    ];
    for (url, expected) in cases {
        let notifier = Notifier::new(url, None).expect(url);
        assert_eq!(notifier.format(), Some(expected), "{url}");
    }
}

#[test]
fn configured_format_overrides_detection() {
    let n = Notifier::new(&discord_url(), Some(Format::Json)).expect("notifier");
    assert_eq!(n.format(), Some(Format::Json));
    let n = Notifier::new("https://example.com/relay", Some(Format::Discord)).expect("notifier");
    assert_eq!(n.format(), Some(Format::Discord));
    let n = Notifier::from_config(Some("https://example.com/relay"), Some(" Discord "))
        .expect("notifier");
    assert_eq!(n.format(), Some(Format::Discord));
}

#[test]
fn format_values_parse_and_print() {
    assert_eq!(
        "discord".parse::<Format>().expect("discord"),
        Format::Discord
    );
    assert_eq!("JSON".parse::<Format>().expect("json"), Format::Json);
    assert_eq!(" json\n".parse::<Format>().expect("json"), Format::Json);
    for f in [Format::Discord, Format::Json] {
        assert_eq!(f.to_string().parse::<Format>().expect("round trip"), f);
    }
}

#[test]
fn bad_format_values_are_refused_with_the_choices() {
    for bad in ["slack", "", "discord-embed", "xml"] {
        let err = bad.parse::<Format>().expect_err(bad);
        assert!(
            matches!(err, NotifyError::UnknownFormat(_)),
            "{bad}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{bad}`")), "{msg}");
        assert!(msg.contains("`discord` or `json`"), "{msg}");
    }
    let err = Notifier::from_config(Some("https://example.com/h"), Some("teams"))
        .expect_err("bad format");
    assert!(matches!(err, NotifyError::UnknownFormat(_)));
}

#[test]
fn format_without_url_is_refused() {
    let err = Notifier::from_config(None, Some("discord")).expect_err("format without URL");
    assert!(matches!(err, NotifyError::FormatWithoutUrl(_)));
    assert!(err.to_string().contains("no webhook URL"), "{err}");
}

#[test]
fn bad_urls_are_refused_with_a_clear_message() {
    let cases: [(&str, &str); 7] = [
        ("", "is empty"),
        ("   ", "is empty"),
        ("discord.com/api/webhooks/1/tok", "has no scheme"),
        ("localhost:8080/hook", "has no scheme"),
        ("ftp://files.example.com/hook", "uses the `ftp` scheme"),
        ("file:///etc/passwd", "uses the `file` scheme"),
        ("https://exa mple.com/hook", "is not a valid URL"),
    ];
    for (url, expected) in cases {
        let err = Notifier::new(url, None).expect_err(url);
        let msg = err.to_string();
        assert!(msg.contains(expected), "{url:?}: {msg}");
        assert!(
            msg.contains("https://") || msg.contains("http://"),
            "{url:?}: the message should show the expected form: {msg}"
        );
    }
    let err = Notifier::new("http://:8080/hook", None).expect_err("no host");
    assert!(
        matches!(
            err,
            NotifyError::MissingHost { .. } | NotifyError::InvalidUrl { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn errors_never_print_the_secret() {
    let urls = [
        format!("discord.com/api/webhooks/112233445566/{SECRET}"),
        format!("ftp://discord.com/api/webhooks/112233445566/{SECRET}"),
        format!("https://user:{SECRET}@exa mple.com/hook"),
        format!("https://exa mple.com/api/webhooks/{SECRET}"),
    ];
    for url in &urls {
        let err = Notifier::new(url, None).expect_err(url);
        let text = format!("{err} {err:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("112233445566"), "{text}");
    }
}

#[test]
fn masked_url_and_debug_hide_the_token() {
    let notifier = Notifier::new(&discord_url(), None).expect("notifier");
    assert!(notifier.is_enabled());
    assert_eq!(notifier.masked_url(), Some("https://discord.com/api/…"));
    let debug = format!("{notifier:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("https://discord.com/api/…"), "{debug}");
}

#[test]
fn summaries_say_what_happened_and_what_to_do() {
    let stopped = Notification::BatchStopped {
        batch_id: "b7".into(),
        reason: "every API key is invalid.".into(),
        resume_command: "fintel batch --resume --batch-id b7".into(),
    };
    assert_eq!(
        stopped.summary(),
        "Batch b7 stopped: every API key is invalid. Resume it with: fintel batch --resume \
         --batch-id b7"
    );
    // A batch whose name is its id is not named twice.
    let completed = Notification::BatchCompleted {
        batch_id: "b7".into(),
        name: "b7".into(),
        completed: 1,
        skipped: 0,
        failed: 0,
    };
    assert_eq!(
        completed.summary(),
        "Batch b7 completed: 1 completed, 0 skipped, 0 failed."
    );
    let kinds: Vec<&str> = [
        completed,
        stopped,
        Notification::Warning {
            batch_id: None,
            message: "m".into(),
        },
    ]
    .iter()
    .map(Notification::kind)
    .collect();
    assert_eq!(kinds, ["batch_completed", "batch_stopped", "warning"]);
}

#[test]
fn keys_sharing_a_project_are_told_in_both_formats() {
    let message = "GOOGLE_API_KEY_3 and GOOGLE_API_KEY_7 share Google Cloud project 348715329010 \
                   (the provider named it), so they share one quota; daily capacity is now 480, \
                   not 500";
    let shared = Notification::SharedProject {
        batch_id: "b7".into(),
        message: message.into(),
    };
    assert_eq!(shared.kind(), "shared_project");
    assert_eq!(shared.summary(), format!("Batch b7: {message}"));
    let at: jiff::Timestamp = "2026-06-15T19:00:00Z".parse().unwrap();
    let json = fintel_notify::render(fintel_notify::Format::Json, &shared, at);
    assert_eq!(json["event"], "shared_project");
    assert_eq!(json["batch_id"], "b7");
    assert_eq!(json["message"], format!("Batch b7: {message}"));
    let discord = fintel_notify::render(fintel_notify::Format::Discord, &shared, at);
    assert!(discord["content"]
        .as_str()
        .unwrap_or("")
        .contains("daily capacity is now 480, not 500"));
    let elsewhere = Notification::SpentElsewhere {
        batch_id: "b7".into(),
        message: "GOOGLE_API_KEY_1 was refused for the day after only 2 of 20 requests".into(),
    };
    assert_eq!(elsewhere.kind(), "spent_elsewhere");
    assert_eq!(elsewhere.batch_id(), Some("b7"));
}
