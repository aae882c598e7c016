//! A worker's data port: [`serve`] answers requests for values in its [`Store`] from
//! other workers fetching task inputs and from clients gathering results, and stores
//! the values clients scatter (all through [`Peers`](tessera_core::wire::fetch::Peers)).

use super::store::Store;
use std::sync::Arc;
use tessera_core::wire::transport::{Connection, Tls};
use tessera_core::wire::{DataReply, DataRequest, Role, frame};
use tessera_core::{Error, Key, Result, Value};
use tokio::net::{TcpListener, TcpStream};

/// Answers data requests on `listener` from holders of `token` (over TLS with `tls`),
/// until the process ends.
pub async fn serve(listener: TcpListener, store: Arc<Store>, token: Arc<str>, tls: Option<Tls>) {
    let mut next_id = 1;
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let (store, token, tls) = (store.clone(), token.clone(), tls.clone());
        next_id += 1;
        let id = next_id;
        tokio::spawn(async move {
            if let Err(e) = answer(stream, tls.as_ref(), &store, &token, id).await {
                tracing::debug!(%peer, "data connection ended: {e}");
            }
        });
    }
}

async fn answer(stream: TcpStream, tls: Option<&Tls>, store: &Store, token: &str, id: u32) -> Result<()> {
    let mut stream = Connection::accept(stream, tls).await?;
    let role = frame::admit(&mut stream, token, id).await?;
    if let Role::Worker(_) = role {
        return Err(Error::Connection("a worker tried to join another worker".into()));
    }
    let mut buf = Vec::new();
    while let Some(requests) = frame::read::<_, Vec<DataRequest>>(&mut stream, &mut buf).await? {
        let mut replies = Vec::with_capacity(requests.len());
        for request in requests {
            replies.push(match request {
                DataRequest::Get { keys } => DataReply::Values(keys.into_iter().map(|k| held(store, k)).collect()),
                DataRequest::Put { values } => {
                    if !matches!(role, Role::Client) {
                        return Err(Error::Connection("only clients may put values on a worker".into()));
                    }
                    values.into_iter().for_each(|(key, value)| store.insert(key, value));
                    DataReply::Stored
                }
            });
        }
        frame::write(&mut stream, &replies).await?;
    }
    Ok(())
}

/// The value of `key` if the store holds it. An unreadable spilled value is reported
/// as not held: the requester reports it missing and the scheduler recomputes it.
fn held(store: &Store, key: Key) -> (Key, Option<Arc<Value>>) {
    let value = store.get(&key).unwrap_or_else(|e| {
        tracing::error!("{e}");
        None
    });
    (key, value)
}
