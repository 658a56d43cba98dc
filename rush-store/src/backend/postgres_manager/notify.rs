//! Hearing other processes' appends: one listening connection per engine handle (opened
//! by the first subscriber) turns their `NOTIFY`s into a watch signal. A connection lost
//! is opened again after a second, and the signal changes then too, since notices may
//! have been missed meanwhile; subscribers still look every poll interval regardless.

use super::PostgresConfig;
use super::tls;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a lost listening connection waits before it connects again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Starts listening on `channel` on `runtime`; notices whose payload is `own` (this
/// handle's own commits, which the database already signals) are skipped.
pub(super) fn listen(
    runtime: &tokio::runtime::Runtime,
    config: PostgresConfig,
    channel: String,
    own: String,
) -> watch::Receiver<u64> {
    let (signal, receiver) = watch::channel(0u64);
    runtime.spawn(async move {
        loop {
            let (notices, mut heard) = mpsc::unbounded_channel();
            if let Ok(client) = tls::connect_listening(&config, notices).await {
                let listening = client
                    .batch_execute(&format!("LISTEN {channel}"))
                    .await
                    .is_ok();
                if listening {
                    // Whatever was appended while no one listened.
                    signal.send_modify(|n| *n = n.wrapping_add(1));
                    while let Some(payload) = heard.recv().await {
                        if payload != own {
                            signal.send_modify(|n| *n = n.wrapping_add(1));
                        }
                    }
                }
            }
            if signal.is_closed() {
                return;
            }
            tokio::time::sleep(RECONNECT).await;
        }
    });
    receiver
}
