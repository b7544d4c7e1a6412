//! A worker's connection on a thread of its own: tasks that block the
//! worker's runtime (a sync loop in an async body, say) cannot stop the
//! connection's traffic, so in-progress acks keep flowing and JetStream
//! does not give a task that is still running to a second worker.

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::ClusterError;

/// Stops the connection's thread when dropped.
pub(crate) struct Stop(#[allow(dead_code, reason = "held for its drop")] oneshot::Sender<()>);

/// Connects to `url` from a new thread running a runtime of its own, which
/// then drives the connection; returns the client, that runtime's handle
/// and what stops it.
pub(crate) async fn connect(
    options: async_nats::ConnectOptions,
    url: &str,
) -> Result<(async_nats::Client, Handle, Stop), ClusterError> {
    let (connected, on_connect) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let url = url.to_owned();
    std::thread::Builder::new()
        .name("delayed-worker-nats".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let failed = ClusterError::new(format!("cannot start a runtime: {err}"));
                    let _ = connected.send(Err(failed));
                    return;
                }
            };
            runtime.block_on(async move {
                let client = super::connect(options, &url).await;
                let ok = client.is_ok();
                let _ = connected.send(client.map(|client| (client, Handle::current())));
                if ok {
                    // Until the worker stops, or drops its side.
                    let _ = stopped.await;
                }
            });
        })
        .map_err(|err| ClusterError::new(format!("cannot start a thread: {err}")))?;
    let (client, handle) = on_connect
        .await
        .map_err(|_| ClusterError::new("the connection thread stopped"))??;
    Ok((client, handle, Stop(stop)))
}
