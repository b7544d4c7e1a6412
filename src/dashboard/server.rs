//! The dashboard's HTTP server, on axum: `/` the page, `/snapshot` the
//! state as JSON, `/events` the changes as server-sent events.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::broadcast::error::RecvError;

use super::state::Hub;

/// The page: one file, its styles and scripts inline.
const PAGE: &str = include_str!("page.html");

/// What a page that fell behind the events gets: reload the snapshot.
const RESYNC: &str = r#"{"type":"resync"}"#;

/// Binds `addr` and serves `hub` on a task of the current runtime until
/// the hub is stopped; returns the address bound.
pub(super) async fn serve(addr: impl ToSocketAddrs, hub: Arc<Hub>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let stopped = hub.stopped();
    let app = Router::new()
        .route("/", get(page))
        .route("/snapshot", get(snapshot))
        .route("/events", get(events))
        .with_state(hub);
    crate::spawn::named_task(|| format!("delayed dashboard {bound}"), async move {
        // An accept error is retried inside; nothing else ends it early.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    });
    Ok(bound)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn snapshot(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        hub.snapshot(),
    )
}

async fn events(State(hub): State<Arc<Hub>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = hub.subscribe();
    let stopped = Box::pin(hub.stopped());
    let stream =
        futures::stream::unfold((events, stopped), |(mut events, mut stopped)| async move {
            let json = tokio::select! {
                event = events.recv() => match event {
                    Ok(json) => json,
                    Err(RecvError::Lagged(_)) => RESYNC.into(),
                    Err(RecvError::Closed) => return None,
                },
                () = &mut stopped => return None,
            };
            Some((Ok(Event::default().data(&*json)), (events, stopped)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
