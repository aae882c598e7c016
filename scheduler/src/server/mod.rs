//! The scheduler as a network service: the async shell around [`State`](crate::State).
//!
//! [`serve`] accepts connections, checks each one's [`Hello`](tessera_core::wire::Hello)
//! (protocol version and token), then runs a reader and a writer task per connection.
//! Readers forward batches of messages to one loop that owns the [`Cluster`]; writers
//! batch whatever the loop queued for their connection. The state machine itself sees
//! only events and never waits on a socket. The [`http`] side (dashboard, JSON API,
//! metrics, autoscaling hooks) asks the same loop.

mod cluster;
mod http;
pub mod status;

pub use cluster::ClusterConfig;
use cluster::{Cluster, Inbound};

use crate::{ClientId, WorkerId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tessera_core::wire::transport::{Connection, Reader, Tls};
use tessera_core::wire::{ClientMessage, Role, WorkerReport, frame};
use tessera_core::{Error, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedSender};

/// How often heartbeats and retirements are checked and clients told the progress.
const TICK: Duration = Duration::from_millis(250);

/// Everything [`serve`] needs besides its listener.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// The shared secret clients and workers must present.
    pub token: String,
    /// The scheduler's TLS identity: when given, every client and worker connection is
    /// mutual TLS.
    pub tls: Option<Tls>,
    /// How workers are treated.
    pub cluster: ClusterConfig,
}

/// Serves clients and workers on `listener`, and the dashboard and HTTP API on
/// `dashboard` when given (over HTTPS when the cluster uses TLS), until a client shuts
/// the cluster down.
pub async fn serve(listener: TcpListener, dashboard: Option<TcpListener>, config: SchedulerConfig) -> Result<()> {
    let (inbound, mut events) = mpsc::unbounded_channel::<Inbound>();
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let mut cluster = Cluster::new(config.cluster.clone(), stop);
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while events.recv_many(&mut batch, 1024).await > 0 {
            for event in batch.drain(..) {
                cluster.handle(event);
            }
        }
    });
    let ticks = inbound.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        while ticks.send(Inbound::Tick).is_ok() {
            interval.tick().await;
        }
    });
    let token: Arc<str> = config.token.into();
    if let Some(dashboard) = dashboard {
        tokio::spawn(http::serve(dashboard, inbound.clone(), token.clone(), config.tls.clone()));
    }
    let next_id = Arc::new(AtomicU32::new(1));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(|e| Error::Connection(e.to_string()))?,
            _ = &mut stopped => {
                tracing::info!("the cluster is shut down");
                return Ok(());
            }
        };
        let (inbound, token, next_id, tls) = (inbound.clone(), token.clone(), next_id.clone(), config.tls.clone());
        tokio::spawn(async move {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = connection(stream, tls.as_ref(), inbound, &token, id).await {
                tracing::warn!(%peer, "connection refused or failed: {e}");
            }
        });
    }
}

/// Admits one connection and runs it until it closes.
async fn connection(
    stream: TcpStream,
    tls: Option<&Tls>,
    inbound: UnboundedSender<Inbound>,
    token: &str,
    id: u32,
) -> Result<()> {
    let mut stream = Connection::accept(stream, tls).await?;
    let role = frame::admit(&mut stream, token, id).await?;
    let (reader, writer) = stream.split();
    match role {
        Role::Worker(info) => {
            let id = WorkerId(id);
            let (commands, queued) = mpsc::unbounded_channel();
            tokio::spawn(frame::send_batches(writer, queued));
            let _ = inbound.send(Inbound::WorkerJoined { id, info, commands });
            let result =
                forward(reader, &inbound, |reports: Vec<WorkerReport>| Inbound::FromWorker { id, reports }).await;
            let _ = inbound.send(Inbound::WorkerLeft { id });
            result
        }
        Role::Client => {
            let id = ClientId(id);
            let (replies, queued) = mpsc::unbounded_channel();
            tokio::spawn(frame::send_batches(writer, queued));
            let _ = inbound.send(Inbound::ClientJoined { id, replies });
            let result =
                forward(reader, &inbound, |messages: Vec<ClientMessage>| Inbound::FromClient { id, messages }).await;
            let _ = inbound.send(Inbound::ClientLeft { id });
            result
        }
        Role::Peer => Err(Error::Connection("a peer connected to the scheduler instead of a worker".into())),
    }
}

/// Reads batches from a connection and forwards each as one inbound message.
async fn forward<T: DeserializeOwned + Serialize>(
    mut reader: Reader,
    inbound: &UnboundedSender<Inbound>,
    wrap: impl Fn(Vec<T>) -> Inbound,
) -> Result<()> {
    let mut buf = Vec::new();
    while let Some(batch) = frame::read::<_, Vec<T>>(&mut reader, &mut buf).await? {
        if inbound.send(wrap(batch)).is_err() {
            break;
        }
    }
    Ok(())
}
