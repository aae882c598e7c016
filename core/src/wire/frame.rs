//! Frames over a byte stream: an 8-byte little-endian length, then a postcard-encoded
//! message. After the handshake every frame holds a batch (`Vec`) of messages, so a
//! burst of small messages costs one write and one wake-up.

use crate::error::{Error, Result};
use crate::wire::{Hello, PROTOCOL_VERSION, Role, Welcome, token_matches};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

/// The largest frame accepted (a bigger length means a corrupt or hostile stream).
pub const MAX_FRAME_BYTES: u64 = 64 << 30;

/// The most messages put in one batch.
const MAX_BATCH: usize = 8192;

/// Encodes `message` as one frame, length prefix included.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    let mut out = postcard::to_extend(message, vec![0u8; 8])
        .map_err(|e| Error::Serde(format!("cannot encode a message: {e}")))?;
    let len = (out.len() - 8) as u64;
    out[..8].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// Writes `message` as one frame.
pub async fn write<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, message: &T) -> Result<()> {
    let frame = encode(message)?;
    w.write_all(&frame).await.map_err(io_error)?;
    w.flush().await.map_err(io_error)
}

/// Reads one frame into `buf` and decodes it; `None` when the stream ended cleanly
/// before a frame began.
pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R, buf: &mut Vec<u8>) -> Result<Option<T>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_error(e)),
    }
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME_BYTES {
        return Err(Error::Connection(format!("a frame of {len} bytes is larger than the limit; closing")));
    }
    buf.clear();
    buf.resize(len as usize, 0);
    r.read_exact(buf).await.map_err(io_error)?;
    let message = postcard::from_bytes(buf).map_err(|e| Error::Serde(format!("cannot decode a message: {e}")))?;
    if buf.capacity() > 1 << 20 {
        *buf = Vec::new();
    }
    Ok(Some(message))
}

/// Sends everything arriving on `messages` to `w`, batching what has queued up, until
/// the channel closes or writing fails.
pub async fn send_batches<W: AsyncWrite + Unpin, T: Serialize>(
    mut w: W,
    mut messages: UnboundedReceiver<T>,
) -> Result<()> {
    let mut batch = Vec::new();
    while messages.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&mut w, &batch).await?;
        batch.clear();
    }
    w.shutdown().await.map_err(io_error)
}

/// Opens a connection from the caller's side: sends `hello`, returns the id the
/// listener gave, or its reason for refusing.
pub async fn introduce<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, hello: &Hello) -> Result<u32> {
    write(stream, hello).await?;
    match read::<_, Welcome>(stream, &mut Vec::new()).await? {
        Some(Welcome::Accepted { id }) => Ok(id),
        Some(Welcome::Refused { reason }) => Err(Error::Connection(format!("refused: {reason}"))),
        None => Err(Error::Connection("the listener closed the connection during the handshake".into())),
    }
}

/// Accepts a connection from the listener's side: reads the [`Hello`], checks version
/// and token, and answers. Returns the caller's role, or the reason it was refused
/// (after telling the caller).
pub async fn admit<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, token: &str, id: u32) -> Result<Role> {
    let hello: Hello = read(stream, &mut Vec::new())
        .await?
        .ok_or_else(|| Error::Connection("the peer closed the connection before saying hello".into()))?;
    let refusal = if hello.version != PROTOCOL_VERSION {
        Some(format!("protocol version {} does not match this cluster's version {PROTOCOL_VERSION}", hello.version))
    } else if !token_matches(&hello.token, token) {
        Some("the token does not match the cluster's token (set TESSERA_TOKEN or pass --token)".to_string())
    } else {
        None
    };
    match refusal {
        Some(reason) => {
            write(stream, &Welcome::Refused { reason: reason.clone() }).await?;
            Err(Error::Connection(reason))
        }
        None => {
            write(stream, &Welcome::Accepted { id }).await?;
            Ok(hello.role)
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Connection(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;
    use crate::wire::{DataReply, DataRequest};

    #[tokio::test]
    async fn batches_cross_a_stream_in_order() {
        let (a, b) = tokio::io::duplex(64);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..1000u64 {
            tx.send(DataRequest::Get { keys: vec![Key::new("x", [i])] }).unwrap();
        }
        drop(tx);
        let sender = tokio::spawn(send_batches(a, rx));
        let (mut r, mut buf, mut seen) = (b, Vec::new(), Vec::new());
        while let Some(batch) = read::<_, Vec<DataRequest>>(&mut r, &mut buf).await.unwrap() {
            for request in batch {
                let DataRequest::Get { keys } = request else { panic!("only gets were sent: {request:?}") };
                seen.push(keys[0].index()[0]);
            }
        }
        sender.await.unwrap().unwrap();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_wrong_token_is_refused_with_a_reason() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let hello = Hello { version: PROTOCOL_VERSION, token: "guess".into(), role: Role::Client };
        let (caller, listener) = tokio::join!(introduce(&mut a, &hello), admit(&mut b, "s3cret", 7));
        assert!(caller.unwrap_err().to_string().contains("token does not match"));
        assert!(listener.is_err());
        let hello = Hello { token: "s3cret".into(), ..hello };
        let (caller, listener) = tokio::join!(introduce(&mut a, &hello), admit(&mut b, "s3cret", 7));
        assert_eq!(caller.unwrap(), 7);
        assert!(matches!(listener.unwrap(), Role::Client));
    }

    #[tokio::test]
    async fn a_huge_length_is_refused_without_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u64::MAX.to_le_bytes()).await.unwrap();
        let err = read::<_, DataReply>(&mut b, &mut Vec::new()).await.unwrap_err();
        assert!(err.to_string().contains("larger than the limit"), "{err}");
    }
}
