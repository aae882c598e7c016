//! The scheduler's HTTP side (axum): the dashboard page, the JSON API behind it,
//! Prometheus metrics, and the hooks an autoscaler uses. A TLS cluster serves it over
//! HTTPS with the scheduler's certificate ([`HttpsListener`]).
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard (one self-contained page polling the status API) |
//! | `GET /api/v1/status` | [`Status`]: workers, task states, group progress, task stream, group graph |
//! | `GET /api/v1/adaptive-target` | [`AdaptiveTarget`]: how many workers the current work wants |
//! | `POST /api/v1/retire-workers` | body [`RetireRequest`], answer [`Retired`]; needs `Authorization: Bearer <token>` |
//! | `GET /metrics` | Prometheus text format |

use super::cluster::Inbound;
use super::status::{AdaptiveTarget, RetireRequest, Retired, Status};
use axum::Router;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::wire::token_matches;
use tessera_core::wire::transport::{HttpsStream, Tls};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::oneshot;

/// What every handler shares: the way into the cluster loop and the token.
#[derive(Clone)]
struct Api {
    inbound: UnboundedSender<Inbound>,
    token: Arc<str>,
}

/// How long a browser may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the dashboard and API on `listener` (HTTPS with `tls`) until the process
/// ends.
pub(crate) async fn serve(listener: TcpListener, inbound: UnboundedSender<Inbound>, token: Arc<str>, tls: Option<Tls>) {
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/api/v1/status", get(status))
        .route("/api/v1/adaptive-target", get(adaptive_target))
        .route("/api/v1/retire-workers", post(retire_workers))
        .route("/metrics", get(metrics))
        .with_state(Api { inbound, token });
    let served = match tls {
        None => axum::serve(listener, app).await,
        Some(tls) => axum::serve(HttpsListener::new(listener, tls), app).await,
    };
    if let Err(e) = served {
        tracing::error!("the dashboard server stopped: {e}");
    }
}

/// Connections of a TCP listener after their TLS handshake. Handshakes run on their
/// own tasks, so a slow or silent client never holds up the others.
struct HttpsListener {
    local_addr: SocketAddr,
    handshaken: mpsc::Receiver<(HttpsStream, SocketAddr)>,
}

impl HttpsListener {
    fn new(listener: TcpListener, tls: Tls) -> Self {
        let local_addr = listener.local_addr().expect("a bound listener has an address");
        let (ready, handshaken) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else { continue };
                let (tls, ready) = (tls.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept_https(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = ready.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "dashboard TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "dashboard TLS handshake timed out"),
                    }
                });
            }
        });
        HttpsListener { local_addr, handshaken }
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = HttpsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// Asks the cluster loop something and waits for the answer.
async fn ask<T>(api: &Api, question: impl FnOnce(oneshot::Sender<T>) -> Inbound) -> Result<T, Response> {
    let (reply, answer) = oneshot::channel();
    let stopped = || (StatusCode::SERVICE_UNAVAILABLE, "the scheduler is stopping").into_response();
    api.inbound.send(question(reply)).map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn status(Shared(api): Shared<Api>) -> Result<axum::Json<Status>, Response> {
    ask(&api, |reply| Inbound::Status { reply }).await.map(axum::Json)
}

async fn adaptive_target(Shared(api): Shared<Api>) -> Result<axum::Json<AdaptiveTarget>, Response> {
    ask(&api, |reply| Inbound::AdaptiveTarget { reply }).await.map(axum::Json)
}

async fn retire_workers(
    Shared(api): Shared<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<Retired>, Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token_matches(presented, &api.token) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "retiring workers needs the cluster token: Authorization: Bearer <token>",
        )
            .into_response());
    }
    let request: RetireRequest = serde_json::from_slice(&body).map_err(|e| {
        (StatusCode::BAD_REQUEST, format!("expected {{\"count\": N}} or {{\"names\": [...]}}: {e}")).into_response()
    })?;
    match ask(&api, |reply| Inbound::Retire { request, reply }).await? {
        Ok(retired) => Ok(axum::Json(retired)),
        Err(message) => Err((StatusCode::BAD_REQUEST, message).into_response()),
    }
}

async fn metrics(Shared(api): Shared<Api>) -> Result<Response, Response> {
    let status = ask(&api, |reply| Inbound::Status { reply }).await?;
    let text = prometheus_text(&status);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// The status as Prometheus exposition text.
fn prometheus_text(status: &Status) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let workers = &status.cluster.workers;
    family("tessera_workers", "gauge", "Connected workers.", &[(String::new(), workers.len() as f64)]);
    family("tessera_clients", "gauge", "Connected clients.", &[(String::new(), f64::from(status.cluster.clients))]);
    let states: Vec<(String, f64)> =
        status.states.iter().map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n as f64)).collect();
    family("tessera_tasks", "gauge", "Tasks the scheduler knows, by state.", &states);
    family(
        "tessera_tasks_finished_total",
        "counter",
        "Tasks finished since the scheduler started.",
        &[(String::new(), status.finished_total as f64)],
    );
    family(
        "tessera_tasks_stolen_total",
        "counter",
        "Tasks given back by a busy worker for an idle one.",
        &[(String::new(), status.stolen_total as f64)],
    );
    let per_worker = |f: &dyn Fn(&tessera_core::wire::WorkerSummary) -> f64| -> Vec<(String, f64)> {
        workers.iter().map(|w| (format!("{{worker=\"{}\"}}", w.name.replace('"', "'")), f(w))).collect()
    };
    family(
        "tessera_worker_memory_bytes",
        "gauge",
        "Bytes of results a worker holds in memory.",
        &per_worker(&|w| w.metrics.memory_bytes as f64),
    );
    family(
        "tessera_worker_spilled_bytes",
        "gauge",
        "Bytes of results a worker has spilled to its local disk.",
        &per_worker(&|w| w.metrics.spilled_bytes as f64),
    );
    family(
        "tessera_worker_executing_tasks",
        "gauge",
        "Tasks running or waiting for a thread on a worker.",
        &per_worker(&|w| f64::from(w.metrics.executing)),
    );
    family("tessera_worker_threads", "gauge", "A worker's task threads.", &per_worker(&|w| f64::from(w.nthreads)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::wire::{ClusterInfo, WorkerMetrics, WorkerSummary};

    #[test]
    fn metrics_are_prometheus_text() {
        let mut status = Status {
            cluster: ClusterInfo {
                workers: vec![WorkerSummary {
                    name: "w0".into(),
                    data_address: "127.0.0.1:1".into(),
                    nthreads: 2,
                    held_keys: 3,
                    metrics: WorkerMetrics { memory_bytes: 1024, spilled_bytes: 4096, executing: 1, stored_keys: 3 },
                }],
                tasks: 5,
                clients: 1,
            },
            finished_total: 9,
            stolen_total: 2,
            ..Status::default()
        };
        status.states.insert("memory".into(), 3);
        let text = prometheus_text(&status);
        for line in [
            "# TYPE tessera_workers gauge",
            "tessera_workers 1",
            "tessera_tasks{state=\"memory\"} 3",
            "tessera_tasks_finished_total 9",
            "tessera_tasks_stolen_total 2",
            "tessera_worker_memory_bytes{worker=\"w0\"} 1024",
            "tessera_worker_spilled_bytes{worker=\"w0\"} 4096",
            "tessera_worker_threads{worker=\"w0\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
