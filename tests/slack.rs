//! The Slack incoming-webhook channel against a wiremock fake serving the
//! fixtures in `tests/fixtures/notify/` with their documented statuses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use farewatch::domain::{Recipient, E164};
use farewatch::notify::slack::{Slack, SlackConfig};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::Notify;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The secret part of the webhook URL; must never be printed.
const SECRET: &str = "XyZsEcReT0fThEwEbHoOk42";
const HOOK_PATH: &str = "/services/T0FAREWTCH/B0FAREWTCH/XyZsEcReT0fThEwEbHoOk42";
const TEXT: &str = "farewatch: WUH-SZX 2026-03-14 now CNY 612 (your max CNY 700)";

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

fn config(base: &str) -> SlackConfig {
    SlackConfig {
        webhook_url: SecretString::from(format!("{base}{HOOK_PATH}")),
        timeout: Duration::from_secs(2),
    }
}

fn slack(base: &str) -> Slack {
    Slack::new(farewatch::upstream::http::build_client(), config(base))
}

fn text_response(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "text/plain")
}

/// The secret must appear nowhere in what an error shows.
fn assert_no_secret(err: &NotifyError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("/services/"), "{shown}");
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
    let result = slack(&server.uri()).post(TEXT).await;
    if let Err(err) = &result {
        assert_no_secret(err);
    }
    result
}

// ---- the request ----

#[tokio::test]
async fn posts_the_exact_request_and_accepts_ok() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({ "text": TEXT })))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture!("slack-webhook-ok.txt"), "text/html"),
        )
        .expect(2)
        .mount(&server)
        .await;
    let notifier = slack(&server.uri());

    let first = notifier.post(TEXT).await.unwrap();
    let second = notifier.post(TEXT).await.unwrap();

    assert!(first.id.starts_with("slack-"), "{first:?}");
    assert_eq!(first.segments, None);
    assert_ne!(first.id, second.id, "each post gets its own local id");
}

#[tokio::test]
async fn send_ignores_the_phone_number_and_posts_to_the_webhook() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(body_json(json!({ "text": TEXT })))
        .respond_with(text_response(200, "ok".to_owned()))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = slack(&server.uri());

    let delivery = notifier
        .send(
            &Recipient::Phone(E164::from_trusted("+15558675310".to_owned())),
            TEXT,
        )
        .await
        .unwrap();

    assert!(delivery.id.starts_with("slack-"), "{delivery:?}");
    assert_eq!(notifier.name(), "slack");
}

#[tokio::test]
async fn escapes_control_characters_so_nobody_is_pinged() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(body_json(json!({
            "text": "&lt;!channel&gt; Mum &amp; Dad: LHR-JFK &lt; GBP 350 ✈"
        })))
        .respond_with(text_response(200, "ok".to_owned()))
        .expect(1)
        .mount(&server)
        .await;

    slack(&server.uri())
        .post("<!channel> Mum & Dad: LHR-JFK < GBP 350 ✈")
        .await
        .unwrap();
}

// ---- plain-text error codes ----

#[tokio::test]
async fn invalid_payload_is_other_a_client_bug() {
    let err = post_answered_with(text_response(
        400,
        fixture!("slack-webhook-error-invalid_payload.txt"),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 400, code: None, message }
            if message.contains("invalid_payload") && message.contains("bug")),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_text_is_other() {
    let err = post_answered_with(text_response(400, "no_text".to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 400, code: None, message }
            if message.contains("no_text")),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_service_is_permanent() {
    let err = post_answered_with(text_response(
        404,
        fixture!("slack-webhook-error-no_service.txt"),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Permanent { code: 404, message }
            if message.contains("no_service") && message.contains("SLACK_WEBHOOK_")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_archived_channel_is_permanent() {
    let err = post_answered_with(text_response(
        410,
        fixture!("slack-webhook-error-channel_is_archived.txt"),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Permanent { code: 410, message }
            if message.contains("channel_is_archived") && message.contains("SLACK_WEBHOOK_")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_forbidden_webhook_is_a_configuration_error() {
    for code in ["action_prohibited", "invalid_token"] {
        let err = post_answered_with(text_response(403, code.to_owned()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::Configuration { code: 403, message }
                if message.contains(code) && message.contains("SLACK_WEBHOOK_")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn the_code_wins_over_the_status() {
    // One third-party source sends this code with 400 rather than 403.
    let err = post_answered_with(text_response(
        400,
        "posting_to_general_channel_denied".to_owned(),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Configuration { code: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn too_many_requests_is_rate_limited_and_the_wait_is_logged() {
    let (result, logs) = capture_logs(post_answered_with(
        ResponseTemplate::new(429).insert_header("Retry-After", "30"),
    ))
    .await;
    assert!(matches!(
        result.unwrap_err(),
        NotifyError::RateLimited { code: 429, .. }
    ));
    assert!(logs.contains("Slack is rate limiting"), "{logs}");
    assert!(logs.contains("retry_after_secs=30"), "{logs}");
}

#[tokio::test]
async fn a_5xx_is_ambiguous() {
    for status in [500, 503] {
        let err = post_answered_with(text_response(status, "rollup_error".to_owned()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::Ambiguous(message)
                if message.contains(&status.to_string()) && message.contains("may have posted")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_200_that_is_not_ok_is_ambiguous() {
    let err = post_answered_with(
        ResponseTemplate::new(200).set_body_raw("<html>captive portal</html>", "text/html"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Ambiguous(message) if message.contains("captive portal")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unexpected_4xx_is_other() {
    let err = post_answered_with(text_response(413, "too big".to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 413, code: None, message }
            if message.contains("too big")),
        "{err:?}"
    );
}

// ---- transport ----

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    // Bind to learn a free port, then close it so nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = slack(&format!("http://127.0.0.1:{port}"))
        .post(TEXT)
        .await
        .unwrap_err();
    assert!(matches!(&err, NotifyError::Unreachable(_)), "{err:?}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn an_unusable_url_is_unreachable_without_quoting_it() {
    let notifier = Slack::new(
        farewatch::upstream::http::build_client(),
        SlackConfig {
            webhook_url: SecretString::from(format!("hooks.slack.com{HOOK_PATH}")),
            timeout: Duration::from_secs(2),
        },
    );
    let err = notifier.post(TEXT).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Unreachable(message) if message.contains("SLACK_WEBHOOK_")),
        "{err:?}"
    );
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
        .respond_with(text_response(200, "ok".to_owned()).set_delay(Duration::from_secs(60)))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = slack(&server.uri());

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
    let config = config("https://hooks.slack.com");
    let notifier = Slack::new(farewatch::upstream::http::build_client(), config.clone());
    for text in [
        format!("{config:?}"),
        format!("{notifier:?}"),
        format!("{notifier:#?}"),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("/services/"), "{text}");
        assert!(text.contains("hooks.slack.com"), "{text}");
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
