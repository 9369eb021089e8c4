//! The one pooled HTTP client every provider shares, and body reading with a size cap.

use std::time::Duration;

use bytes::Bytes;

/// Largest response body any provider may send us. The biggest real fare
/// payloads are tens of kilobytes; anything this large is a fault.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Time allowed to establish a TCP+TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the shared client: connection pooling, gzip, HTTP/2, rustls with ring.
///
/// Per-request timeouts are set by each provider; this only sets the connect timeout.
pub fn build_client() -> reqwest::Client {
    // With rustls-no-provider a client cannot be built before a crypto
    // provider is installed; an Err only means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        // No cap on idle connections per host: a cycle fans hundreds of
        // lookups out to one provider host at once, and every connection
        // dropped after a cycle must be re-opened (TCP and TLS handshakes)
        // the next. Idle ones close after reqwest's 90 s idle timeout.
        .user_agent(concat!("farewatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body exceeded [`MAX_BODY_BYTES`].
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The cap that was hit.
        limit: usize,
    },
    /// The transfer failed or timed out midway.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads a response body, refusing to buffer more than `limit` bytes.
pub async fn read_body_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, BodyError> {
    match response.content_length() {
        Some(len) if len > limit as u64 => return Err(BodyError::TooLarge { limit }),
        // A declared length within the cap: let hyper collect it, which
        // avoids copying a single-chunk body (the common case).
        Some(_) => return Ok(response.bytes().await?),
        None => {}
    }
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(chunk) = response.chunk().await? {
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}
