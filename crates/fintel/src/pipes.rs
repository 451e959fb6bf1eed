//! Unix manners with pipes: `fintel batch status | head -1` ends quietly when the reader goes
//! away, never with a panic ("failed printing to stdout") or an error after the output.
//!
//! Commands that print and end (status, lists, results, exports, text...) get the default
//! SIGPIPE action back, as a C tool has: the kernel ends them quietly when the reader closes.
//! Commands that run a batch, serve or talk to the network keep Rust's ignored SIGPIPE (a
//! closed socket must be an error, not death) and print through [`out`] / [`err`], which treat
//! a closed pipe as nothing left to say.

use std::io::{ErrorKind, Write};

use crate::cli::{BatchArgs, Command};

/// Whether a closed pipe may simply end this command (SIGPIPE's default action): only
/// commands that print a finished answer and open no network connection.
pub fn default_sigpipe_for(command: Option<&Command>) -> bool {
    match command {
        // The demo, a batch run, a dashboard or a simulator: long-lived and networked.
        None => false,
        Some(Command::Batch(b)) => batch_only_prints(b),
        Some(
            Command::Config(_)
            | Command::Keys(_)
            | Command::Export(_)
            | Command::Results(_)
            | Command::Db(_)
            | Command::Cache(_)
            | Command::Text(_)
            | Command::Changes(_)
            | Command::Screen(_)
            | Command::Workflows(_),
        ) => true,
        Some(
            Command::Analyze(_)
            | Command::Demo(_)
            | Command::Plan(_)
            | Command::Filings(_)
            | Command::Sim(_)
            | Command::Doctor(_)
            | Command::Web(_),
        ) => false,
    }
}

fn batch_only_prints(b: &BatchArgs) -> bool {
    b.action.is_some() || b.list_incomplete
}

/// Restores SIGPIPE's default action (Rust ignores it before `main`).
pub fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler; done at start-up
    // before any thread that could be writing exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Writes `text` to stdout; a reader that went away is not an error (there is no one left to
/// tell), any other failure is.
pub fn out(text: &str) -> std::io::Result<()> {
    quiet_if_closed(write_all(&mut std::io::stdout().lock(), text))
}

/// Writes `text` to stderr, ignoring every failure: a message nobody can read must never stop
/// or crash a batch.
pub fn err(text: &str) {
    let _ = write_all(&mut std::io::stderr().lock(), text);
}

fn write_all(w: &mut impl Write, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.flush()
}

fn quiet_if_closed(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command(args: &[&str]) -> Option<Command> {
        let mut argv = vec!["fintel"];
        argv.extend_from_slice(args);
        crate::cli::Cli::try_parse_from(argv)
            .expect("parses")
            .command
    }

    #[test]
    fn only_commands_that_print_and_end_die_quietly_on_a_closed_pipe() {
        let table: &[(&[&str], bool)] = &[
            (&["batch", "status"], true),
            (&["batch", "--list-incomplete"], true),
            (&["batch", "cancel", "x"], true),
            (&["results", "AAPL"], true),
            (&["export", "--format", "csv", "--output", "-"], true),
            (&["text", "f.htm"], true),
            (&["keys"], true),
            (&["workflows"], true),
            (&["batch", "companies.csv", "--years", "2"], false),
            (&["batch", "--resume"], false),
            (&["analyze", "AAPL"], false),
            (&["filings", "AAPL"], false),
            (&["plan", "companies.csv"], false),
            (&["web"], false),
            (&["demo"], false),
            (&[], false),
        ];
        for (args, expected) in table {
            assert_eq!(
                default_sigpipe_for(command(args).as_ref()),
                *expected,
                "{args:?}"
            );
        }
    }

    #[test]
    fn a_closed_reader_is_quiet_other_failures_are_not() {
        let closed = std::io::Error::from(ErrorKind::BrokenPipe);
        assert!(quiet_if_closed(Err(closed)).is_ok());
        let full = std::io::Error::other("disk full");
        assert!(quiet_if_closed(Err(full)).is_err());
    }
}
