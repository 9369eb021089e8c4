//! The Discord webhook channel against a wiremock fake serving the fixtures
//! in `tests/fixtures/notify/` with the statuses and headers their README gives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use farewatch::domain::{Recipient, E164};
use farewatch::notify::discord::{Discord, DiscordConfig, MAX_CONTENT_CHARS};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::Notify;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The webhook token, the secret part of the URL; must never be printed.
const SECRET: &str = "dIsCoRdToKeN_sEcReT-0123456789abcdef";
const HOOK_PATH: &str = "/api/webhooks/1187654321098765432/dIsCoRdToKeN_sEcReT-0123456789abcdef";
const TEXT: &str = "farewatch: WUH-SZX 2026-03-14 now CNY 612 (your max CNY 700) @everyone";
/// A message id as Discord returns it with `wait=true`.
const MESSAGE_ID: &str = "1234567890123456789";

macro_rules! fixture {
    ($name:literal) => {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/notify/",
            $name
        ))
        .expect($name)
    };
}

fn config(url: String, username: Option<&str>) -> DiscordConfig {
    DiscordConfig {
        webhook_url: SecretString::from(url),
        username: username.map(str::to_owned),
        timeout: Duration::from_secs(2),
    }
}

fn discord(base: &str) -> Discord {
    Discord::new(
        farewatch::upstream::http::build_client(),
        config(format!("{base}{HOOK_PATH}"), None),
    )
}

fn json_response(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

/// The `wait=true` reply: a message object.
fn created_message(content: &str) -> ResponseTemplate {
    json_response(
        200,
        json!({
            "id": MESSAGE_ID,
            "type": 0,
            "content": content,
            "channel_id": "1100000000000000000",
            "webhook_id": "1187654321098765432",
            "timestamp": "2026-03-14T03:02:11.000000+00:00",
            "mentions": [],
            "mention_everyone": false
        })
        .to_string(),
    )
}

fn expected_body(content: &str) -> Value {
    json!({ "content": content, "allowed_mentions": { "parse": [] } })
}

/// The secret must appear nowhere in what an error shows.
fn assert_no_secret(err: &NotifyError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("/api/webhooks/"), "{shown}");
    }
}

/// Answers one post with `response` and returns what `post` made of it.
async fn post_answered_with(response: ResponseTemplate) -> Result<Delivery, NotifyError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    let result = discord(&server.uri()).post(TEXT).await;
    if let Err(err) = &result {
        assert_no_secret(err);
    }
    result
}

// ---- the request ----

#[tokio::test]
async fn posts_the_exact_request_and_takes_the_message_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(query_param("wait", "true"))
        .and(header("content-type", "application/json"))
        .and(body_json(expected_body(TEXT)))
        .respond_with(created_message(TEXT))
        .expect(1)
        .mount(&server)
        .await;

    let delivery = discord(&server.uri()).post(TEXT).await.unwrap();

    assert_eq!(
        delivery,
        Delivery {
            id: MESSAGE_ID.to_owned(),
            segments: None,
        }
    );
}

#[tokio::test]
async fn a_204_is_success_with_a_local_id_and_the_username_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(query_param("wait", "false"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "content": TEXT,
            "username": "fare-bot",
            "allowed_mentions": { "parse": [] }
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = Discord::new(
        farewatch::upstream::http::build_client(),
        config(
            format!("{}{HOOK_PATH}?wait=false", server.uri()),
            Some("fare-bot"),
        ),
    );

    let delivery = notifier.post(TEXT).await.unwrap();

    assert!(delivery.id.starts_with("discord-"), "{delivery:?}");
    assert_eq!(delivery.segments, None);
}

#[tokio::test]
async fn a_200_without_a_message_object_is_still_success() {
    let delivery = post_answered_with(ResponseTemplate::new(200))
        .await
        .unwrap();
    assert!(delivery.id.starts_with("discord-"), "{delivery:?}");
}

#[tokio::test]
async fn keeps_the_thread_id_and_adds_wait() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(query_param("thread_id", "1200000000000000000"))
        .and(query_param("wait", "true"))
        .respond_with(created_message(TEXT))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = Discord::new(
        farewatch::upstream::http::build_client(),
        config(
            format!("{}{HOOK_PATH}?thread_id=1200000000000000000", server.uri()),
            None,
        ),
    );

    assert_eq!(notifier.post(TEXT).await.unwrap().id, MESSAGE_ID);
}

#[tokio::test]
async fn send_ignores_the_phone_number_and_posts_to_the_webhook() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(body_json(expected_body(TEXT)))
        .respond_with(created_message(TEXT))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = discord(&server.uri());

    let delivery = notifier
        .send(
            &Recipient::Phone(E164::from_trusted("+15558675310".to_owned())),
            TEXT,
        )
        .await
        .unwrap();

    assert_eq!(delivery.id, MESSAGE_ID);
    assert_eq!(notifier.name(), "discord");
}

#[tokio::test]
async fn long_content_is_cut_to_2000_characters_on_a_char_boundary() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    // 2,500 characters, most of them multi-byte (3 bytes for ✈, 2 for é).
    let long: String = "✈é ".repeat(834).chars().take(2500).collect();
    assert_eq!(long.chars().count(), 2500);

    discord(&server.uri()).post(&long).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let content = body["content"].as_str().unwrap();
    assert_eq!(content.chars().count(), MAX_CONTENT_CHARS);
    let kept = content.strip_suffix('…').expect("cut content ends with …");
    assert_eq!(kept.chars().count(), 1999);
    assert!(long.starts_with(kept));
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
}

// ---- error replies ----

#[tokio::test]
async fn invalid_form_body_is_other_with_its_code() {
    let err = post_answered_with(json_response(
        400,
        fixture!("discord-400-invalid-form-body.json"),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 400, code: Some(50035), message }
            if message.contains("Invalid Form Body") && message.contains("BASE_TYPE_REQUIRED")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_webhook_is_permanent() {
    let err = post_answered_with(json_response(
        404,
        fixture!("discord-404-unknown-webhook.json"),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Permanent { code: 10015, message }
            if message.contains("Unknown Webhook") && message.contains("DISCORD_WEBHOOK_")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_404_without_code_10015_is_a_configuration_error() {
    let err =
        post_answered_with(ResponseTemplate::new(404).set_body_raw("404: Not Found", "text/plain"))
            .await
            .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Configuration { code: 404, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_bad_token_is_a_configuration_error() {
    let err = post_answered_with(json_response(
        401,
        json!({ "message": "Invalid Webhook Token", "code": 50027 }).to_string(),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Configuration { code: 50027, message }
            if message.contains("Invalid Webhook Token") && message.contains("DISCORD_WEBHOOK_")),
        "{err:?}"
    );

    let err = post_answered_with(json_response(
        403,
        json!({ "message": "Missing Access", "code": 50001 }).to_string(),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Configuration { code: 50001, .. }),
        "{err:?}"
    );
}

/// The three documented 429s, served as the fixtures README says. The body's
/// decimal `retry_after` is the wait reported (not the rounded header).
#[tokio::test]
async fn every_rate_limit_scope_is_rate_limited_and_the_wait_is_logged() {
    let cases = [
        (
            fixture!("discord-429-user.json"),
            vec![("Retry-After", "65"), ("X-RateLimit-Scope", "user")],
            "retry_after_secs=64.57",
            "scope user, global false",
        ),
        (
            fixture!("discord-429-shared.json"),
            vec![("Retry-After", "1337"), ("X-RateLimit-Scope", "shared")],
            "retry_after_secs=1336.57",
            "scope shared, global false",
        ),
        (
            fixture!("discord-429-global.json"),
            vec![
                ("Retry-After", "65"),
                ("X-RateLimit-Scope", "global"),
                ("X-RateLimit-Global", "true"),
            ],
            "retry_after_secs=64.57",
            "scope global, global true",
        ),
    ];
    for (body, headers, wait, scope) in cases {
        let mut response = json_response(429, body);
        for (name, value) in headers {
            response = response.insert_header(name, value);
        }
        let (result, logs) = capture_logs(post_answered_with(response)).await;
        let NotifyError::RateLimited {
            code: 429,
            retry_after: Some(retry_after),
        } = result.unwrap_err()
        else {
            panic!("a 429 with a wait");
        };
        // The error carries the same wait the log reports, for the retry.
        let secs = wait.trim_start_matches("retry_after_secs=");
        assert_eq!(format!("{}", retry_after.as_secs_f64()), secs);
        assert!(logs.contains("Discord is rate limiting"), "{logs}");
        assert!(logs.contains(wait), "{logs}");
        assert!(logs.contains(scope), "{logs}");
    }
}

#[tokio::test]
async fn a_bare_429_falls_back_to_the_retry_after_header() {
    let (result, logs) = capture_logs(post_answered_with(
        ResponseTemplate::new(429).insert_header("Retry-After", "3"),
    ))
    .await;
    assert!(matches!(
        result.unwrap_err(),
        NotifyError::RateLimited { code: 429, .. }
    ));
    assert!(logs.contains("retry_after_secs=3"), "{logs}");
}

#[tokio::test]
async fn a_5xx_is_ambiguous() {
    let err = post_answered_with(
        ResponseTemplate::new(502).set_body_raw("<html>Bad Gateway</html>", "text/html"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Ambiguous(message)
            if message.contains("502") && message.contains("may have posted")),
        "{err:?}"
    );
}

// ---- transport ----

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = discord(&format!("http://127.0.0.1:{port}"))
        .post(TEXT)
        .await
        .unwrap_err();
    assert!(matches!(&err, NotifyError::Unreachable(_)), "{err:?}");
    assert_no_secret(&err);
}

/// Matches every request, and signals when one has arrived.
struct Arrived(Arc<Notify>);

impl Match for Arrived {
    fn matches(&self, _: &Request) -> bool {
        self.0.notify_one();
        true
    }
}

/// As in `tests/twilio.rs`: the clock is paused only once the request has
/// reached the server, so the paused clock jumps straight to the 2 s client
/// timeout and the 60 s server delay is never waited for.
#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous() {
    let server = MockServer::start().await;
    let arrived = Arc::new(Notify::new());
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(Arrived(Arc::clone(&arrived)))
        .respond_with(created_message(TEXT).set_delay(Duration::from_secs(60)))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = discord(&server.uri());

    let (result, ()) = tokio::join!(notifier.post(TEXT), async {
        arrived.notified().await;
        tokio::time::pause();
    });

    let err = result.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Ambiguous(message) if message.contains("2s")),
        "{err:?}"
    );
    assert_no_secret(&err);
}

// ---- secrets ----

#[test]
fn debug_never_shows_the_webhook_url() {
    let config = config(format!("https://discord.com{HOOK_PATH}"), Some("fare-bot"));
    let notifier = Discord::new(farewatch::upstream::http::build_client(), config.clone());
    for text in [
        format!("{config:?}"),
        format!("{notifier:?}"),
        format!("{notifier:#?}"),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("/api/webhooks/"), "{text}");
        assert!(text.contains("discord.com"), "{text}");
        assert!(text.contains("fare-bot"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}

// ---- helpers ----

/// Runs `future` with a `tracing` subscriber that records what is logged.
async fn capture_logs<F: std::future::Future>(future: F) -> (F::Output, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // #[tokio::test] runs on one thread, so a thread-local default sees it all.
    let guard = tracing::subscriber::set_default(subscriber);
    let out = future.await;
    drop(guard);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}
