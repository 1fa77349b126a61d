//! How the long-running commands (`run`, `emulate`) learn they should stop,
//! and the signals `run` must survive.

/// Ctrl-C, or SIGTERM where there is one (what `kill` and service
/// managers send). The handlers are installed when this is called, not
/// when it is first awaited: called before the port opens, a SIGTERM sent
/// as soon as the port answers stops the command in order instead of
/// killing it with the signal's default action.
pub(super) fn stop_requested() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        if let (Some(mut term), Some(mut int)) = signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A write past the file size limit (`ulimit -f`) raises SIGXFSZ, whose
/// default action kills the process; caught, the write fails with EFBIG
/// instead, the store reports it, and `/healthz` says so (503) rather than
/// the runtime vanishing mid-transaction.
pub(super) fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // SIGXFSZ is 25 on Linux and the BSDs, macOS included.
        if let Ok(mut xfsz) = signal(SignalKind::from_raw(25)) {
            tokio::spawn(async move { while xfsz.recv().await.is_some() {} });
        }
    }
}

/// Ctrl-C or SIGTERM ([`stop_requested`]), with SIGHUP kept from killing
/// the runtime before the watcher listens for it.
pub(super) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // SIGHUP asks the watcher for a reload, but the watcher starts after
    // the port opens; until then SIGHUP's default action killed the
    // runtime. tokio keeps a signal's handler for the life of the process
    // once registered, so registering it here is enough; the watcher's own
    // stream receives every SIGHUP from its start.
    #[cfg(unix)]
    drop(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::hangup(),
    ));
    stop_requested()
}
