//! [`Peers`]: fetching values from workers' data ports, as workers fetch task inputs
//! and clients gather results.

use crate::error::{Error, Result};
use crate::key::Key;
use crate::value::Value;
use crate::wire::transport::{Connection, Tls};
use crate::wire::{DataReply, DataRequest, Hello, PROTOCOL_VERSION, Role, frame};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Connections to other workers' data ports, opened on first use and kept.
pub struct Peers {
    token: String,
    role: Role,
    tls: Option<Tls>,
    connections: Mutex<HashMap<String, Arc<Mutex<Connection>>>>,
}

impl Peers {
    /// Fetches with `token`, introducing itself as `role` ([`Role::Peer`] for a worker,
    /// [`Role::Client`] for a client), over TLS to `tls://` addresses.
    pub fn new(token: String, role: Role, tls: Option<Tls>) -> Self {
        Peers { token, role, tls, connections: Mutex::new(HashMap::new()) }
    }

    /// The values of `keys` from the worker at `address`; an error names a key it does
    /// not hold.
    pub async fn fetch(&self, address: &str, keys: Vec<Key>) -> Result<Vec<(Key, Arc<Value>)>> {
        let connection = self.connection(address).await?;
        let mut stream = connection.lock().await;
        let result = exchange(&mut stream, keys).await;
        if result.is_err() {
            drop(stream);
            self.connections.lock().await.remove(address);
        }
        let reply = result.map_err(|e| Error::Connection(format!("fetching from {address}: {e}")))?;
        reply
            .values
            .into_iter()
            .map(|(key, value)| match value {
                Some(v) => Ok((key, v)),
                None => Err(Error::Connection(format!("the worker at {address} does not hold {key}"))),
            })
            .collect()
    }

    async fn connection(&self, address: &str) -> Result<Arc<Mutex<Connection>>> {
        let mut connections = self.connections.lock().await;
        if let Some(c) = connections.get(address) {
            return Ok(c.clone());
        }
        let mut stream = Connection::open(address, self.tls.as_ref(), "the worker").await?;
        let hello = Hello { version: PROTOCOL_VERSION, token: self.token.clone(), role: self.role.clone() };
        frame::introduce(&mut stream, &hello).await?;
        let c = Arc::new(Mutex::new(stream));
        connections.insert(address.to_string(), c.clone());
        Ok(c)
    }
}

async fn exchange(stream: &mut Connection, keys: Vec<Key>) -> Result<DataReply> {
    frame::write(stream, &vec![DataRequest::Get { keys }]).await?;
    let replies: Vec<DataReply> = frame::read(stream, &mut Vec::new())
        .await?
        .ok_or_else(|| Error::Connection("the worker closed the connection".into()))?;
    replies.into_iter().next().ok_or_else(|| Error::Connection("an empty reply".into()))
}
