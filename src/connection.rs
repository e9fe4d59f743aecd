//! The client behind the connection being served: its address, kept in a
//! task-local by the accept loop (`Application::run_until_stopped`) and read
//! by both front doors (login throttling counts failures by it).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

tokio::task_local! {
    /// The address of the client whose connection the current task serves.
    static CLIENT: SocketAddr;
}

/// `connection` (the task serving one client's connection), with `client`
/// as the address [`client_ip`] gives each of its requests. A task-local
/// rather than axum's `ConnectInfo`, which is put in every request's
/// extensions (a boxed value and, with the router's own, a second growth of
/// the extension map) though only the login handlers read it. This holds
/// because the server speaks HTTP/1 only, where a connection's requests are
/// answered inside its task (HTTP/2 would run each stream in a task of its
/// own, without it).
pub fn serving_client<F: Future>(
    client: SocketAddr,
    connection: F,
) -> impl Future<Output = F::Output> {
    CLIENT.scope(client, connection)
}

/// The address of the client that sent the request being handled, or
/// `None` outside a task started by [`serving_client`].
pub fn client_ip() -> Option<IpAddr> {
    CLIENT.try_with(|client| client.ip()).ok()
}
