//! The daemon's `/healthz` and Prometheus `/metrics` (with
//! `--metrics-addr`): the address parsing and listening; the metrics
//! themselves are the library's (`farewatch::telemetry`).

use std::fmt::Display;
use std::net::SocketAddr;

use tokio::net::{TcpListener, ToSocketAddrs};

/// The flag the address comes from, for messages.
const FLAG: &str = "--metrics-addr";

/// Parses `--metrics-addr`: `IP:PORT` as it is, or `HOST:PORT` (e.g.
/// `localhost:9100`) resolved to the address [`serve`] listens on, the
/// first IPv4 one if there is one (as Go's `net.Listen` does, so
/// `localhost` means 127.0.0.1 even where IPv6 is off). The flags are read
/// before the runtime starts, so this blocks on the system resolver.
pub fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let expected = "expected HOST:PORT, e.g. 127.0.0.1:9100 or localhost:9100";
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(format!("no port; {expected}"));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("`{port}` is not a port (0 to 65535); {expected}"));
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(format!("no host; {expected}"));
    }
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?;
    listen_order(resolved)
        .into_iter()
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

/// The addresses to try listening on, IPv4 first, otherwise in the
/// resolver's order.
fn listen_order(addrs: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = addrs.collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
}

/// Resolves `addr` (tokio's `lookup_host`) and listens on the first of its
/// addresses that can be bound; errors name the flag.
async fn listen(addr: &(impl ToSocketAddrs + Display)) -> anyhow::Result<TcpListener> {
    let resolved = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{FLAG} {addr}: cannot resolve it: {e}"))?;
    let mut failure = None;
    for candidate in listen_order(resolved) {
        match TcpListener::bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(error) => failure = Some((candidate, error)),
        }
    }
    Err(match failure {
        Some((candidate, error)) if candidate.to_string() == addr.to_string() => {
            anyhow::anyhow!("{FLAG} {addr}: cannot listen there: {error}")
        }
        Some((candidate, error)) => {
            anyhow::anyhow!("{FLAG} {addr}: cannot listen on {candidate}: {error}")
        }
        None => anyhow::anyhow!("{FLAG} {addr}: resolves to no address"),
    })
}

/// Listens on `addr` (an address, or `HOST:PORT` resolved here), installs
/// the Prometheus recorder ([`farewatch::telemetry::install`]) and serves
/// `/healthz` and `/metrics` until `shutdown`. Returns the bound address
/// (useful with port 0).
pub async fn serve(
    addr: impl ToSocketAddrs + Display,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = listen(&addr).await?;
    let bound = listener.local_addr()?;
    let handle = farewatch::telemetry::install()
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    let app = farewatch::telemetry::router(handle);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("metrics server stopped: {error}");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_host_names_are_accepted() {
        assert_eq!(
            parse_addr("127.0.0.1:9100"),
            Ok("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:9100"), Ok("[::1]:9100".parse().unwrap()));
        let local = parse_addr("localhost:9100").unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 9100);
    }

    #[test]
    fn malformed_addresses_say_what_is_expected() {
        for (value, says) in [
            ("localhost", "no port"),
            ("localhost:http", "`http` is not a port"),
            ("localhost:65536", "`65536` is not a port"),
            (":9100", "no host"),
        ] {
            let error = parse_addr(value).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
            assert!(error.contains("HOST:PORT"), "{value}: {error}");
        }
    }

    #[test]
    fn ipv4_addresses_are_tried_first() {
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(listen_order([v6, v4].into_iter()), vec![v4, v6]);
    }
}
