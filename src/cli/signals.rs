//! How the long-running commands (`run`, `emulate`) learn they should stop.

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
