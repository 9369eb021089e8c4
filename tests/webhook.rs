//! The generic signed JSON webhook against a wiremock receiver. The
//! signature is checked by recomputing the HMAC here with `ring` directly,
//! from the bytes and headers the receiver actually got.

use std::sync::Arc;
use std::time::Duration;

use farewatch::domain::{Recipient, E164};
use farewatch::notify::webhook::{
    sign, verify, verify_fresh, Webhook, WebhookConfig, SIGNATURE_TOLERANCE,
};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use jiff::Timestamp;
use ring::hmac;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::Notify;
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "whsec_farewatch_test_secret";
const HOOK_PATH: &str = "/hooks/farewatch";
const TEXT: &str =
    "farewatch: LHR-JFK 2027-03-01 now GBP 312.46 (your max GBP 350.00) \"quoted\" ✈";

fn config(url: String) -> WebhookConfig {
    WebhookConfig {
        url,
        secret: SecretString::from(SECRET.to_owned()),
        timeout: Duration::from_secs(2),
    }
}

fn webhook(base: &str) -> Webhook {
    Webhook::new(
        farewatch::upstream::http::build_client(),
        config(format!("{base}{HOOK_PATH}")),
    )
}

/// The secret must appear nowhere in what an error shows.
fn assert_no_secret(err: &NotifyError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

/// HMAC-SHA256 of `"<timestamp>.<body>"`, hex, computed without the code under test.
fn expected_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let hex: String = ctx
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn post_answered_with(response: ResponseTemplate) -> Result<Delivery, NotifyError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    let result = webhook(&server.uri()).post(TEXT).await;
    if let Err(err) = &result {
        assert_no_secret(err);
    }
    result
}

// ---- the request and its signature ----

#[tokio::test]
async fn posts_a_signed_event_the_receiver_can_verify() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(header("content-type", "application/json"))
        .and(header_exists("x-farewatch-timestamp"))
        .and(header_exists("x-farewatch-signature"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let before = Timestamp::now().as_second();

    let delivery = webhook(&server.uri()).post(TEXT).await.unwrap();

    let after = Timestamp::now().as_second();
    assert!(delivery.id.starts_with("webhook-"), "{delivery:?}");
    assert_eq!(delivery.segments, None);

    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap();
    let timestamp_header = header("x-farewatch-timestamp");
    let timestamp: i64 = timestamp_header.parse().unwrap();
    assert!(
        (before..=after).contains(&timestamp),
        "{timestamp} not in {before}..={after}"
    );

    // The body, exactly: sent_at is the signed instant in RFC 3339.
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let sent_at = Timestamp::from_second(timestamp).unwrap().to_string();
    assert!(
        sent_at.ends_with('Z') && !sent_at.contains('.'),
        "{sent_at}"
    );
    assert_eq!(
        body,
        json!({ "event": "fare_alert", "text": TEXT, "sent_at": sent_at })
    );

    // The signature, recomputed independently from what arrived.
    let signature = header("x-farewatch-signature");
    assert_eq!(
        signature,
        expected_signature(SECRET.as_bytes(), timestamp_header, &request.body)
    );
    assert!(verify(
        SECRET.as_bytes(),
        timestamp,
        &request.body,
        signature
    ));
    assert!(verify_fresh(
        SECRET.as_bytes(),
        timestamp,
        &request.body,
        signature,
        Timestamp::now()
    ));

    // A tampered body, timestamp or secret does not verify.
    let mut tampered = request.body.clone();
    let at = tampered.iter().position(|&b| b == b'3').unwrap();
    tampered[at] = b'2';
    assert!(!verify(SECRET.as_bytes(), timestamp, &tampered, signature));
    assert!(!verify(
        SECRET.as_bytes(),
        timestamp + 1,
        &request.body,
        signature
    ));
    assert!(!verify(
        b"not-the-secret",
        timestamp,
        &request.body,
        signature
    ));
}

#[test]
fn sign_matches_a_known_answer() {
    // python3: hmac.new(b"whsec_farewatch_test_secret",
    //   b"1773457331." + body, hashlib.sha256).hexdigest()
    let body =
        br#"{"event":"fare_alert","text":"LHR-JFK now GBP 312.46","sent_at":"2026-03-14T03:02:11Z"}"#;
    let expected = "sha256=519a5898685a4255947621a951af129830cf99cce439264975f3a95fba208201";
    assert_eq!(sign(SECRET.as_bytes(), 1_773_457_331, body), expected);
    assert!(verify(SECRET.as_bytes(), 1_773_457_331, body, expected));
}

#[test]
fn verify_rejects_malformed_headers() {
    let body = b"{}";
    let good = sign(SECRET.as_bytes(), 1, body);
    for bad in [
        "",
        "sha256=",
        "sha256=zz",
        &good[7..],                          // no scheme
        &good.replace("sha256=", "sha512="), // wrong scheme
        &good[..good.len() - 1],             // odd length
        &format!("{good}00"),                // too long
    ] {
        assert!(!verify(SECRET.as_bytes(), 1, body, bad), "{bad:?}");
    }
}

#[test]
fn verify_fresh_rejects_replays_outside_the_tolerance() {
    let body = b"{}";
    let signed_at: Timestamp = "2026-03-14T03:02:11Z".parse().unwrap();
    let timestamp = signed_at.as_second();
    let signature = sign(SECRET.as_bytes(), timestamp, body);
    let tolerance = jiff::SignedDuration::try_from(SIGNATURE_TOLERANCE).unwrap();
    let second = jiff::SignedDuration::from_secs(1);
    let fresh = |now: Timestamp| verify_fresh(SECRET.as_bytes(), timestamp, body, &signature, now);

    assert!(fresh(signed_at));
    assert!(fresh(signed_at + tolerance));
    assert!(
        fresh(signed_at - tolerance),
        "the sender's clock may be ahead"
    );
    assert!(!fresh(signed_at + tolerance + second), "a replay");
    assert!(!fresh(signed_at - tolerance - second));
}

#[tokio::test]
async fn send_ignores_the_phone_number_and_posts_to_the_webhook() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("{\"received\":true}", "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let notifier = webhook(&server.uri());

    let delivery = notifier
        .send(
            &Recipient::Phone(E164::from_trusted("+15558675310".to_owned())),
            TEXT,
        )
        .await
        .unwrap();

    assert!(delivery.id.starts_with("webhook-"), "{delivery:?}");
    assert_eq!(notifier.name(), "webhook");
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["text"], TEXT);
    assert!(!String::from_utf8_lossy(&requests[0].body).contains("+15558675310"));
}

// ---- error replies ----

#[tokio::test]
async fn a_4xx_is_classified_by_status() {
    let err = post_answered_with(
        ResponseTemplate::new(400)
            .set_body_raw("{\"error\":\"unknown event\"}", "application/json"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 400, code: None, message }
            if message.contains("unknown event")),
        "{err:?}"
    );

    for status in [401, 403, 404] {
        let err = post_answered_with(ResponseTemplate::new(status))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::Configuration { code, message }
                if *code == u32::from(status) && message.contains("signing secret")),
            "{err:?}"
        );
    }

    let err = post_answered_with(ResponseTemplate::new(410))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Permanent { code: 410, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn too_many_requests_is_rate_limited() {
    let err = post_answered_with(ResponseTemplate::new(429).insert_header("Retry-After", "10"))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::RateLimited { code: 429, .. }));
}

#[tokio::test]
async fn a_5xx_is_ambiguous() {
    let err = post_answered_with(
        ResponseTemplate::new(503).set_body_raw("upstream unavailable", "text/plain"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Ambiguous(message)
            if message.contains("503") && message.contains("upstream unavailable")),
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
    let err = webhook(&format!("http://127.0.0.1:{port}"))
        .post(TEXT)
        .await
        .unwrap_err();
    assert!(matches!(&err, NotifyError::Unreachable(_)), "{err:?}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn a_non_http_url_is_unreachable() {
    let notifier = Webhook::new(
        farewatch::upstream::http::build_client(),
        config("ftp://example.com/hook".to_owned()),
    );
    let err = notifier.post(TEXT).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Unreachable(message) if message.contains("http(s)")),
        "{err:?}"
    );
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
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(60)))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = webhook(&server.uri());

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
fn debug_never_shows_the_secret_or_the_query() {
    let config = config("https://alerts.example.com/in/farewatch?token=qs-token-123".to_owned());
    let notifier = Webhook::new(farewatch::upstream::http::build_client(), config.clone());
    for text in [
        format!("{config:?}"),
        format!("{notifier:?}"),
        format!("{notifier:#?}"),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("qs-token-123"), "{text}");
        assert!(
            text.contains("https://alerts.example.com/in/farewatch"),
            "{text}"
        );
        assert!(text.contains("redacted"), "{text}");
    }
}
