//! The client behind the connection being served: its address and the id
//! of the request being answered, kept in a task-local by the accept loop
//! (`Application::run_until_stopped`) and the front door. Both front doors
//! read them (login throttling counts failures by the address; the audit
//! log records both).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderValue;

/// One client connection being served.
struct Connection {
    client: SocketAddr,
    /// The `X-Request-Id` of the request being answered on it.
    request_id: RefCell<Option<HeaderValue>>,
    /// The client a trusted proxy named for the request being answered
    /// (`TRUSTED_PROXIES`); a load balancer's connection carries many
    /// clients' requests, so this is set for each request.
    forwarded_for: Cell<Option<IpAddr>>,
}

tokio::task_local! {
    static CONNECTION: Connection;
}

/// `connection` (the task serving one client's connection), with `client`
/// as the address [`client_ip`] gives each of its requests. A task-local
/// rather than axum's `ConnectInfo`, which is put in every request's
/// extensions (a boxed value and, with the router's own, a second growth of
/// the extension map) though only a few handlers read it. This holds
/// because the server speaks HTTP/1 only, where a connection's requests are
/// answered one after another inside its task (HTTP/2 would run each stream
/// in a task of its own, without it).
pub fn serving_client<F: Future>(
    client: SocketAddr,
    connection: F,
) -> impl Future<Output = F::Output> {
    CONNECTION.scope(
        Connection {
            client,
            request_id: RefCell::new(None),
            forwarded_for: Cell::new(None),
        },
        connection,
    )
}

/// The address of the client that sent the request being handled (as a
/// trusted proxy named it, else the connection's peer), or `None` outside a
/// task started by [`serving_client`].
pub fn client_ip() -> Option<IpAddr> {
    CONNECTION
        .try_with(|c| c.forwarded_for.get().unwrap_or(c.client.ip()))
        .ok()
}

/// The address of the connection's peer (a load balancer, or the client).
pub fn peer_ip() -> Option<IpAddr> {
    CONNECTION.try_with(|c| c.client.ip()).ok()
}

/// Names the request the connection answers next, and the client a trusted
/// proxy forwarded it for (the front door, as it takes the request).
pub fn answering(request_id: &HeaderValue, forwarded_for: Option<IpAddr>) {
    let _ = CONNECTION.try_with(|c| {
        *c.request_id.borrow_mut() = Some(request_id.clone());
        c.forwarded_for.set(forwarded_for);
    });
}

/// The id of the request being handled, or `None` outside a request.
pub fn request_id() -> Option<String> {
    CONNECTION
        .try_with(|c| {
            c.request_id
                .borrow()
                .as_ref()
                .and_then(|id| id.to_str().ok().map(str::to_owned))
        })
        .ok()
        .flatten()
}
