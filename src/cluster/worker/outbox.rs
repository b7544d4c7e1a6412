//! A worker's outbox: the reports of tasks that end together go to their
//! client in one message, so that under load a report costs the server a
//! fraction of a message.

use std::sync::{Arc, PoisonError};

use tokio::sync::oneshot;

use super::Shared;
use crate::cluster::wire;

/// A report waiting to be sent.
pub(super) struct Outgoing {
    client: String,
    reply: String,
    payload: Vec<u8>,
    sent: oneshot::Sender<()>,
}

impl Shared {
    /// Sends `payload`, a report, to `reply` (where `client` listens), with
    /// whatever other reports wait for the same client; returns once it is
    /// on its way.
    pub(super) async fn report(&self, client: String, reply: String, payload: Vec<u8>) {
        let (sent, on_its_way) = oneshot::channel();
        self.outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Outgoing {
                client,
                reply,
                payload,
                sent,
            });
        self.outbox_bell.notify_one();
        let _ = on_its_way.await;
    }
}

/// Sends what the outbox holds whenever something is put in it: one
/// message per client, a batch when several reports wait for it.
pub(super) async fn send_reports(shared: Arc<Shared>) {
    loop {
        shared.outbox_bell.notified().await;
        let waiting =
            std::mem::take(&mut *shared.outbox.lock().unwrap_or_else(PoisonError::into_inner));
        let mut by_reply: Vec<(String, Vec<Outgoing>)> = Vec::new();
        for outgoing in waiting {
            match by_reply
                .iter_mut()
                .find(|(reply, _)| *reply == outgoing.reply)
            {
                Some((_, group)) => group.push(outgoing),
                None => by_reply.push((outgoing.reply.clone(), vec![outgoing])),
            }
        }
        for (reply, group) in by_reply {
            let payload = match group.as_slice() {
                [one] => one.payload.clone(),
                many => wire::batch(many.iter().map(|outgoing| outgoing.payload.as_slice())),
            };
            let _ = shared.client.publish(reply, payload.into()).await;
            for outgoing in group {
                shared.sent(outgoing.client, outgoing.reply, outgoing.payload);
                let _ = outgoing.sent.send(());
            }
        }
    }
}
