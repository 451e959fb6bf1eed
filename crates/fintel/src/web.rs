//! `fintel web`: serves the dashboard (`fintel-web`) over the data directory's database until
//! SIGINT or SIGTERM. It only reads, except for the two token-guarded actions; batches keep
//! running in their own processes whatever happens to this one.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Result;
use fintel_web::{BucketConfig, KeyConfig, Token, WebConfig, WebError};

use crate::app::App;
use crate::cli::WebArgs;
use crate::exit::{self, usage};

pub async fn web(app: &App, args: WebArgs) -> Result<u8> {
    let addr = parse_addr(&args.addr)?;
    let config = &app.config;
    if !config.db_path().is_file() {
        return Err(usage(WebError::NoDatabase(config.db_path()).to_string()));
    }
    let shutdown = shutdown_signal()?;
    let token = Token::generate();
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        usage(format!(
            "cannot listen on {addr}: {e}; choose another address with --addr (for example \
             --addr 127.0.0.1:8081)"
        ))
    })?;
    // The address actually bound (port 0 picks a free one); the Host check expects it.
    let bound = listener.local_addr()?;
    let router = fintel_web::router(WebConfig {
        db_path: config.db_path(),
        cache_dir: config.cache_dir(),
        buckets: config
            .buckets
            .iter()
            .map(|b| BucketConfig {
                name: b.name.clone(),
                keys: b
                    .keys
                    .iter()
                    .map(|k| KeyConfig {
                        label: k.label().to_string(),
                        fingerprint: k.fingerprint(),
                    })
                    .collect(),
                limits: b.limits,
            })
            .collect(),
        reset_buffer: config.reset_buffer,
        clock: app.clock.clone(),
        token: token.clone(),
        bound,
    })
    .map_err(|e| match e {
        WebError::NoDatabase(_) => usage(e.to_string()),
        // Unwrapped so that the exit code follows the store's error (a corrupted file is 2).
        WebError::Store(s) => anyhow::Error::new(s),
        e => anyhow::Error::new(e),
    })?;
    let url = format!("http://{bound}/");
    eprintln!("fintel web: the dashboard is at {url}");
    eprintln!(
        "token for actions (stop, re-queue failed): {}",
        token.as_str()
    );
    eprintln!(
        "data directory {}; stop with Ctrl+C (batches keep running in their own processes)",
        config.data_dir.display()
    );
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: {bound} is reachable from other machines: anyone who can reach it can \
             read the dashboard (actions still need the token). Use the default \
             --addr 127.0.0.1:8080 unless you mean it."
        );
    }
    if args.open {
        open_browser(&url);
    }
    fintel_web::serve(listener, router, shutdown).await?;
    eprintln!("fintel web: stopped");
    Ok(exit::OK)
}

/// `HOST:PORT` with an IP address, or `localhost:PORT`.
fn parse_addr(addr: &str) -> Result<SocketAddr> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = addr.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    Err(usage(format!(
        "--addr {addr:?} is not an address like 127.0.0.1:8080 (an IP address and a port; \
         [::1]:8080 for IPv6)"
    )))
}

/// Starts the platform's opener on `url`; a failure only warns (the URL is printed anyway).
fn open_browser(url: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    match tokio::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            let program = program.to_string();
            tokio::spawn(async move {
                match child.wait().await {
                    Ok(status) if status.success() => {}
                    Ok(status) => eprintln!(
                        "warning: {program} could not open a browser ({status}); open the URL \
                         above yourself"
                    ),
                    Err(e) => eprintln!("warning: {program} failed: {e}"),
                }
            });
        }
        Err(e) => eprintln!(
            "warning: cannot start {program} to open a browser ({e}); open the URL above yourself"
        ),
    }
}

/// A future that completes on the first SIGINT or SIGTERM. The handlers are installed here,
/// before the URL is printed, so a signal sent as soon as the dashboard announces itself is
/// never the default (fatal) action.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_ip_and_port_or_localhost() {
        assert_eq!(
            parse_addr("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_addr("localhost:9000").unwrap(),
            "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_addr("[::1]:8080").is_ok());
        for bad in ["8080", "localhost", "example.com:80", "127.0.0.1:99999", ""] {
            let err = parse_addr(bad).unwrap_err();
            assert_eq!(exit::code_of(&err), exit::USAGE, "{bad}");
            assert!(err.to_string().contains("is not an address like"), "{err}");
        }
    }
}
