//! One shutdown future for the driver and every provider: it resolves on
//! the first SIGTERM (kubelet stopping the pod) or SIGINT (Ctrl-C), so the
//! caller can stop taking calls and drain. What draining means is the
//! caller's business.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves on the first SIGTERM or SIGINT after the call. If the handlers
/// cannot be installed (an error is logged), it never resolves: the
/// process then stops the default way, by the signal itself.
pub async fn shutdown() {
    let (term, int) = match listen() {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT");
            return std::future::pending().await;
        }
    };
    wait(term, int).await;
}

fn listen() -> std::io::Result<(Signal, Signal)> {
    Ok((
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    ))
}

async fn wait(mut term: Signal, mut int: Signal) {
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutdown signal received, draining");
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{Signal as Sig, raise};
    use std::time::Duration;

    /// Both signals resolve it; one test so the raised signals of two
    /// parallel tests cannot cross.
    #[tokio::test]
    async fn resolves_on_sigterm_and_on_sigint() {
        for sig in [Sig::SIGTERM, Sig::SIGINT] {
            let (term, int) = listen().expect("handlers");
            let waiting = tokio::spawn(wait(term, int));
            raise(sig).expect("raise");
            tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .unwrap_or_else(|_| panic!("{sig} did not resolve the future"))
                .expect("join");
        }
    }
}
