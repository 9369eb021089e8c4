//! A fake Amadeus and Twilio answering at once from the real payloads in
//! `tests/fixtures/`, for measuring farewatch end to end at rates the
//! Python fake (`scripts/bench/fake_providers.py`) cannot serve: past a few
//! thousand requests a second it answers late, and lookups time out.
//!
//! ```text
//! cargo build --release --example fake_providers
//! target/release/examples/fake_providers PORT [THREADS]
//! ```
//!
//! `GET /count` answers `{"search": N, "sms": M}`: the searches and SMS served.
//! `FIXTURES` names the fixtures folder (default: this repository's).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, Method, Request, Response, StatusCode};
use axum::Router;

struct Fake {
    offers: Bytes,
    token: Bytes,
    created: Bytes,
    searches: AtomicU64,
    sms: AtomicU64,
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.parse().expect("a header value"),
    );
    response
}

async fn answer(fake: Arc<Fake>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path();
    let json = "application/json";
    match *request.method() {
        Method::GET if path.starts_with("/v2/shopping/flight-offers") => {
            fake.searches.fetch_add(1, Ordering::Relaxed);
            reply(
                StatusCode::OK,
                "application/vnd.amadeus+json",
                fake.offers.clone(),
            )
        }
        Method::GET if path.ends_with("/Messages.json") => reply(
            StatusCode::OK,
            json,
            Bytes::from_static(br#"{"messages":[],"next_page_uri":null}"#),
        ),
        Method::GET if path == "/count" => {
            let count = serde_json::json!({
                "search": fake.searches.load(Ordering::Relaxed),
                "sms": fake.sms.load(Ordering::Relaxed),
            });
            reply(StatusCode::OK, json, Bytes::from(count.to_string()))
        }
        Method::POST if path.starts_with("/v1/security/oauth2/token") => {
            reply(StatusCode::OK, json, fake.token.clone())
        }
        Method::POST if path.ends_with("/Messages.json") => {
            fake.sms.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::CREATED, json, fake.created.clone())
        }
        _ => reply(StatusCode::NOT_FOUND, json, Bytes::from_static(b"{}")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .ok_or("usage: fake_providers PORT [THREADS]")?
        .parse()?;
    let threads: usize = match args.next() {
        Some(threads) => threads.parse()?,
        None => 1,
    };
    let fixtures = std::env::var_os("FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"));
    let read = |path: &str| std::fs::read(fixtures.join(path)).map(Bytes::from);
    let fake = Arc::new(Fake {
        offers: read("fares/amadeus-flight-offers-LHR-JFK.json")?,
        token: read("fares/amadeus-token.json")?,
        created: read("notify/twilio-message-created.json")?,
        searches: AtomicU64::new(0),
        sms: AtomicU64::new(0),
    });
    let app = Router::new().fallback(move |request: Request<Body>| answer(fake.clone(), request));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(async move {
            let listener =
                tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
            axum::serve(listener, app).await?;
            Ok(())
        })
}
