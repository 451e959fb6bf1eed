//! Logs: readable lines on stderr (warnings by default; `-v`, `-vv` or `FINTEL_LOG` for more),
//! and, for the commands that run or look after batches, a file per day in the data
//! directory's `logs` folder (the last 14 kept) with the run's story at info level: state
//! changes, waits, warnings, maintenance.
//!
//! Every line, on either side, passes through [`Masking`], which replaces each configured API
//! key (and the webhook URL) with its mask, so a secret that found its way into an error
//! message still never reaches a terminal or a file.

use std::io::Write;
use std::path::Path;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the lines that tell a run's story; the progress display prints them on the
/// terminal itself, so the terminal layer leaves them out.
pub const RUN_TARGET: &str = "fintel::run";

/// Log files kept (one a day).
const KEPT_LOG_FILES: usize = 14;

/// Sets up both layers; `logs_dir` `None` means the terminal only. A logs folder that cannot
/// be created is a warning, not a reason to refuse the command.
pub fn init(verbose: u8, logs_dir: Option<&Path>, secrets: Vec<String>) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let terminal_filter = EnvFilter::try_from_env("FINTEL_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default))
        .add_directive(
            format!("{RUN_TARGET}=off")
                .parse()
                .expect("a valid directive"),
        );
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(Masking {
            inner: std::io::stderr,
            secrets: secrets.clone(),
        })
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .with_filter(terminal_filter);
    let file = logs_dir.and_then(|dir| match open_log_files(dir) {
        Ok(appender) => {
            let filter = EnvFilter::try_from_env("FINTEL_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,hyper=warn,reqwest=warn,h2=warn"));
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(Masking {
                        inner: appender,
                        secrets,
                    })
                    .with_ansi(false)
                    .with_filter(filter),
            )
        }
        Err(e) => {
            eprintln!(
                "warning: no log file: cannot use {}: {e}; logging to the terminal only",
                dir.display()
            );
            None
        }
    });
    let _ = tracing_subscriber::registry()
        .with(terminal)
        .with(file)
        .try_init();
}

fn open_log_files(
    dir: &Path,
) -> Result<tracing_appender::rolling::RollingFileAppender, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    Ok(tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("fintel")
        .filename_suffix("log")
        .max_log_files(KEPT_LOG_FILES)
        .build(dir)?)
}

/// A writer maker whose writers hold an event's line and write it masked when dropped.
pub struct Masking<M> {
    inner: M,
    secrets: Vec<String>,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Masking<M> {
    type Writer = MaskedLine<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedLine {
            inner: self.inner.make_writer(),
            secrets: &self.secrets,
            buffer: Vec::new(),
        }
    }
}

/// One event's output, masked as a whole so that a secret split across `write` calls is
/// still found.
pub struct MaskedLine<'a, W: Write> {
    inner: W,
    secrets: &'a [String],
    buffer: Vec<u8>,
}

impl<W: Write> Write for MaskedLine<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for MaskedLine<'_, W> {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let masked = fintel_llm::mask_secrets_in(&text, &secrets);
        let _ = self.inner.write_all(masked.as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_key_split_across_writes_is_still_masked() {
        let sink = Sink::default();
        let maker = Masking {
            inner: {
                let sink = sink.clone();
                move || sink.clone()
            },
            secrets: vec!["AIzaSyD-secret-key-123456".to_string()],
        };
        {
            let mut line = maker.make_writer();
            line.write_all(b"request with key AIzaSyD-sec").unwrap();
            line.write_all(b"ret-key-123456 failed\n").unwrap();
        }
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("AIzaSyD-secret-key-123456"), "{out}");
        assert!(out.contains("AIza") && out.contains("failed"), "{out}");
    }
}
