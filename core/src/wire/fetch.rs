//! [`Peers`]: talking to workers' data ports, as workers fetch task inputs, clients
//! gather results and clients scatter values.

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
        match self.exchange(address, DataRequest::Get { keys }).await? {
            DataReply::Values(values) => values
                .into_iter()
                .map(|(key, value)| match value {
                    Some(v) => Ok((key, v)),
                    None => Err(Error::Connection(format!("the worker at {address} does not hold {key}"))),
                })
                .collect(),
            DataReply::Stored => Err(Error::Connection(format!("the worker at {address} answered out of turn"))),
        }
    }

    /// Stores `values` on the worker at `address` (a client's scatter); returns once the
    /// worker holds them.
    pub async fn put(&self, address: &str, values: Vec<(Key, Arc<Value>)>) -> Result<()> {
        match self.exchange(address, DataRequest::Put { values }).await? {
            DataReply::Stored => Ok(()),
            DataReply::Values(_) => Err(Error::Connection(format!("the worker at {address} answered out of turn"))),
        }
    }

    /// Sends one request to the worker at `address` and reads its reply; a connection
    /// that fails is dropped, to be opened again next time.
    async fn exchange(&self, address: &str, request: DataRequest) -> Result<DataReply> {
        let connection = self.connection(address).await?;
        let mut stream = connection.lock().await;
        let result = exchange(&mut stream, request).await;
        if result.is_err() {
            drop(stream);
            self.connections.lock().await.remove(address);
        }
        result.map_err(|e| Error::Connection(format!("talking to the worker at {address}: {e}")))
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

async fn exchange(stream: &mut Connection, request: DataRequest) -> Result<DataReply> {
    frame::write(stream, &vec![request]).await?;
    let replies: Vec<DataReply> = frame::read(stream, &mut Vec::new())
        .await?
        .ok_or_else(|| Error::Connection("the worker closed the connection".into()))?;
    replies.into_iter().next().ok_or_else(|| Error::Connection("an empty reply".into()))
}
