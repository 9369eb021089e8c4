//! The Twilio client against a wiremock fake serving the recorded fixtures
//! in `tests/fixtures/notify/`.

use std::sync::Arc;
use std::time::Duration;

use farewatch::domain::{Recipient, E164};
use farewatch::notify::twilio::{Sender, Twilio, TwilioConfig, MAX_RECONCILE_PAGES};
use farewatch::notify::{Delivery, Notifier, NotifyError};
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::Notify;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT_SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const AUTH_TOKEN: &str = "s3cr3t-auth-token-f00d";
/// `printf '%s' "$ACCOUNT_SID:$AUTH_TOKEN" | base64`, computed outside the code under test.
const EXPECTED_AUTHORIZATION: &str =
    "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpzM2NyM3QtYXV0aC10b2tlbi1mMDBk";
const MESSAGES_PATH: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json";
const FROM: &str = "+15017122661";
const MESSAGING_SERVICE_SID: &str = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TO: &str = "+15558675310";
/// Characters that must be form-encoded: `&`, `=`, `%`, `+`, a newline.
const BODY: &str =
    "farewatch: LHR-JFK 2027-03-01 now GBP 312.46 (your max GBP 350.00). Mum & Dad = 100% +1\nok";

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

fn config(base_url: &str, sender: Sender) -> TwilioConfig {
    TwilioConfig {
        base_url: base_url.to_owned(),
        account_sid: ACCOUNT_SID.to_owned(),
        auth_token: SecretString::from(AUTH_TOKEN.to_owned()),
        sender,
        timeout: Duration::from_secs(2),
    }
}

fn twilio(base_url: &str) -> Twilio {
    twilio_with(base_url, Sender::From(FROM.to_owned()))
}

fn twilio_with(base_url: &str, sender: Sender) -> Twilio {
    Twilio::new(
        farewatch::upstream::http::build_client(),
        config(base_url, sender),
    )
}

fn to() -> E164 {
    E164::from_trusted(TO.to_owned())
}

fn json_response(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

/// Matches a form body whose decoded fields are exactly these, in any order.
struct FormIs(Vec<(String, String)>);

impl FormIs {
    fn new(fields: &[(&str, &str)]) -> Self {
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        fields.sort();
        Self(fields)
    }
}

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let mut got: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        got.sort();
        got == self.0
    }
}

/// Matches a request whose raw (still percent-encoded) query contains a string.
struct RawQueryContains(&'static str);

impl Match for RawQueryContains {
    fn matches(&self, request: &Request) -> bool {
        request.url.query().is_some_and(|q| q.contains(self.0))
    }
}

/// Answers one message create with `response` and returns what `send` made of it.
async fn send_answered_with(response: ResponseTemplate) -> Result<Delivery, NotifyError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    twilio(&server.uri())
        .send(&Recipient::Phone(to()), BODY)
        .await
}

// ---- the request ----

#[tokio::test]
async fn sends_the_exact_request_from_a_number() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", EXPECTED_AUTHORIZATION))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(FormIs::new(&[("To", TO), ("From", FROM), ("Body", BODY)]))
        .respond_with(json_response(201, fixture!("twilio-message-created.json")))
        .expect(1)
        .mount(&server)
        .await;

    let delivery = twilio(&server.uri())
        .send(&Recipient::Phone(to()), BODY)
        .await
        .unwrap();

    assert_eq!(
        delivery,
        Delivery {
            id: "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
            segments: Some(1),
        }
    );
}

#[tokio::test]
async fn sends_through_a_messaging_service_without_from() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", EXPECTED_AUTHORIZATION))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(FormIs::new(&[
            ("To", TO),
            ("MessagingServiceSid", MESSAGING_SERVICE_SID),
            ("Body", BODY),
        ]))
        .respond_with(json_response(
            201,
            fixture!("twilio-message-created-messaging-service.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let notifier = twilio_with(
        &server.uri(),
        Sender::MessagingService(MESSAGING_SERVICE_SID.to_owned()),
    );
    let delivery = notifier.send(&Recipient::Phone(to()), BODY).await.unwrap();

    assert_eq!(delivery.id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(delivery.segments, Some(1));
}

// ---- 201 replies ----

#[tokio::test]
async fn zero_segments_means_not_known_yet() {
    let delivery = send_answered_with(json_response(
        201,
        fixture!("twilio-message-created-scheduled.json"),
    ))
    .await
    .unwrap();
    assert_eq!(delivery.id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(
        delivery.segments, None,
        "num_segments \"0\": no sender assigned yet"
    );
}

#[tokio::test]
async fn parses_two_segments() {
    let delivery = send_answered_with(json_response(
        201,
        fixture!("twilio-message-created-2-segments.json"),
    ))
    .await
    .unwrap();
    assert_eq!(
        delivery,
        Delivery {
            id: "SM0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned(),
            segments: Some(2),
        }
    );
}

#[tokio::test]
async fn an_unknown_status_still_parses() {
    let mut created: Value =
        serde_json::from_str(&fixture!("twilio-message-created.json")).unwrap();
    created["status"] = json!("carrier_pigeon_dispatched");
    let delivery = send_answered_with(json_response(201, created.to_string()))
        .await
        .unwrap();
    assert_eq!(delivery.id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(delivery.segments, Some(1));
}

// ---- error replies, classified by code ----

#[tokio::test]
async fn invalid_to_is_permanent_in_both_wordings() {
    for (body, wording) in [
        (
            fixture!("twilio-error-21211.json"),
            "Invalid 'To' Phone Number: +1555123XXXX",
        ),
        (
            fixture!("twilio-error-21211-legacy.json"),
            "The 'To' number 5551234567 is not a valid phone number.",
        ),
    ] {
        let err = send_answered_with(json_response(400, body))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::Permanent { code: 21211, message } if message.contains(wording)),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn stop_is_permanent_in_both_wordings() {
    for body in [
        fixture!("twilio-error-21610.json"),
        fixture!("twilio-error-21610-legacy.json"),
    ] {
        let err = send_answered_with(json_response(400, body))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::Unsubscribed { code: 21610, message } if message.contains("reply START")),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn not_a_mobile_number_is_permanent() {
    let err = send_answered_with(json_response(400, fixture!("twilio-error-21614.json")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Permanent { code: 21614, message } if message.contains("is not a mobile number")),
        "{err:?}"
    );
}

#[tokio::test]
async fn trial_account_is_a_configuration_error() {
    let err = send_answered_with(json_response(400, fixture!("twilio-error-21608.json")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Configuration { code: 21608, message }
            if message.contains("Trial accounts cannot send") && message.contains("TWILIO_ACCOUNT_SID")),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_credentials_are_a_configuration_error_without_the_token() {
    let err = send_answered_with(json_response(401, fixture!("twilio-error-20003.json")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Configuration { code: 20003, message }
            if message.contains("Your AccountSid or AuthToken was incorrect.")
                && message.contains("TWILIO_ACCOUNT_SID")
                && message.contains("TWILIO_AUTH_TOKEN")),
        "{err:?}"
    );
    assert!(!err.to_string().contains(AUTH_TOKEN));
    assert!(!format!("{err:?}").contains(AUTH_TOKEN));
}

#[tokio::test]
async fn too_many_requests_is_rate_limited() {
    let err = send_answered_with(json_response(429, fixture!("twilio-error-20429.json")))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::RateLimited { code: 20429, .. }));
}

#[tokio::test]
async fn a_bare_429_is_rate_limited_with_the_http_status() {
    let err = send_answered_with(ResponseTemplate::new(429))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::RateLimited { code: 429, .. }));
}

#[tokio::test]
async fn a_full_sender_queue_is_other() {
    let err = send_answered_with(json_response(400, fixture!("twilio-error-21611.json")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 400, code: Some(21611), message }
            if message.contains("exceeded the maximum number of queued messages")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unlisted_code_is_other_with_its_details() {
    let err = send_answered_with(json_response(
        400,
        fixture!("twilio-error-20001-with-details.json"),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Other { status: 400, code: Some(20001), message }
            if message.contains("Bad request") && message.contains(r#"{"foo":"bar"}"#)),
        "{err:?}"
    );
}

#[tokio::test]
async fn reads_the_rfc_9457_error_shape() {
    let problem = json!({
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "The 'To' number +1555123XXXX is not a valid phone number.",
        "instance": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json"
    });
    let err = send_answered_with(json_response(400, problem.to_string()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Permanent { code: 21211, message }
            if message.contains("Invalid 'To' Phone Number")
                && message.contains("is not a valid phone number")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_5xx_without_json_is_ambiguous() {
    let err = send_answered_with(
        ResponseTemplate::new(500).set_body_raw("<html>Internal Server Error</html>", "text/html"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Ambiguous(message) if message.contains("500")),
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
    let err = twilio(&format!("http://127.0.0.1:{port}"))
        .send(&Recipient::Phone(to()), BODY)
        .await
        .unwrap_err();
    assert!(matches!(&err, NotifyError::Unreachable(_)), "{err:?}");
}

/// Matches every request, and signals when one has arrived.
struct Arrived(Arc<Notify>);

impl Match for Arrived {
    fn matches(&self, _: &Request) -> bool {
        self.0.notify_one();
        true
    }
}

/// The clock is paused only once the request has reached the server: then
/// the runtime idles and the paused clock jumps straight to the 2 s client
/// timeout, so the 60 s server delay is never waited for. (Starting paused
/// would race: the clock also jumps while the client is still connecting,
/// and the request would sometimes never be sent.)
#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous() {
    let server = MockServer::start().await;
    let arrived = Arc::new(Notify::new());
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(Arrived(Arc::clone(&arrived)))
        .respond_with(
            json_response(201, fixture!("twilio-message-created.json"))
                .set_delay(Duration::from_secs(60)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let notifier = twilio(&server.uri());
    let recipient = Recipient::Phone(to());

    let (result, ()) = tokio::join!(notifier.send(&recipient, BODY), async {
        arrived.notified().await;
        tokio::time::pause();
    });

    let err = result.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Ambiguous(message) if message.contains("2s")),
        "{err:?}"
    );
}

// ---- reconciliation ----

/// The message-created fixture as a listed message with these fields changed.
fn listed(sid: &str, body: &str, date_created: &str, direction: &str) -> Value {
    let mut message: Value =
        serde_json::from_str(&fixture!("twilio-message-created.json")).unwrap();
    message["sid"] = json!(sid);
    message["body"] = json!(body);
    message["to"] = json!(TO);
    message["from"] = json!(FROM);
    message["date_created"] = json!(date_created);
    message["date_sent"] = json!(date_created);
    message["date_updated"] = json!(date_created);
    message["direction"] = json!(direction);
    message["status"] = json!("delivered");
    message
}

fn page(messages: Vec<Value>, next_page_uri: Option<&str>) -> ResponseTemplate {
    let body = json!({
        "messages": messages,
        "next_page_uri": next_page_uri,
        "page": 0,
        "page_size": 100,
        "first_page_uri": format!("{MESSAGES_PATH}?To=%2B15558675310&PageSize=100&Page=0"),
        "previous_page_uri": null,
        "uri": format!("{MESSAGES_PATH}?To=%2B15558675310&PageSize=100&Page=0"),
        "start": 0,
        "end": messages.len().saturating_sub(1),
    });
    json_response(200, body.to_string())
}

const NEXT_PAGE_URI: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json?To=%2B15558675310&PageSize=100&Page=1&PageToken=PAnext";

/// 05:00 UTC on the day the fixture's message was created (05:01:45).
fn since() -> Timestamp {
    "2023-08-24T05:00:00Z".parse().unwrap()
}

/// First page, newest first: near misses only (another body, an inbound
/// message with the same body), all created after `since`, so the search
/// goes on. No `DateSent` filter: it would hide queued messages.
async fn mount_first_page(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", EXPECTED_AUTHORIZATION))
        .and(query_param("To", TO))
        .and(query_param("PageSize", "100"))
        // `+` percent-encoded: a raw `+` would reach Twilio as a space.
        .and(RawQueryContains("To=%2B15558675310"))
        .and(query_param_is_missing("DateSent>"))
        .and(query_param_is_missing("DateSent"))
        .and(query_param_is_missing("PageToken"))
        .respond_with(page(
            vec![
                listed(
                    "SMother",
                    "a different alert",
                    "Thu, 24 Aug 2023 05:03:00 +0000",
                    "outbound-api",
                ),
                listed(
                    "SMinbound",
                    BODY,
                    "Thu, 24 Aug 2023 05:02:30 +0000",
                    "inbound",
                ),
            ],
            Some(NEXT_PAGE_URI),
        ))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn find_sent_follows_the_next_page_to_the_match() {
    let server = MockServer::start().await;
    mount_first_page(&server).await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", EXPECTED_AUTHORIZATION))
        .and(query_param("PageToken", "PAnext"))
        .respond_with(page(
            vec![
                listed(
                    "SMmatch",
                    BODY,
                    "Thu, 24 Aug 2023 05:01:45 +0000",
                    "outbound-api",
                ),
                listed(
                    "SMtooearly",
                    BODY,
                    "Thu, 24 Aug 2023 04:40:00 +0000",
                    "outbound-api",
                ),
            ],
            None,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let found = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap();

    assert_eq!(found.as_deref(), Some("SMmatch"));
}

/// A message just accepted is `queued` with `date_sent: null` (Twilio fills
/// it in when the carrier takes it): reconciliation must still find it.
#[tokio::test]
async fn find_sent_finds_a_queued_message_without_a_date_sent() {
    let server = MockServer::start().await;
    let mut queued = listed(
        "SMqueued",
        BODY,
        "Thu, 24 Aug 2023 05:01:45 +0000",
        "outbound-api",
    );
    queued["status"] = json!("queued");
    queued["date_sent"] = Value::Null;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param_is_missing("DateSent>"))
        .and(query_param_is_missing("DateSent"))
        .respond_with(page(vec![queued], None))
        .expect(1)
        .mount(&server)
        .await;

    let found = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap();

    assert_eq!(found.as_deref(), Some("SMqueued"));
}

/// Newest first: once a page reaches back past `since` (minus the skew),
/// older pages cannot hold the message, so they are not read.
#[tokio::test]
async fn find_sent_stops_at_a_page_reaching_back_past_since() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param_is_missing("PageToken"))
        .respond_with(page(
            vec![
                listed(
                    "SMother",
                    "a different alert",
                    "Thu, 24 Aug 2023 05:02:00 +0000",
                    "outbound-api",
                ),
                listed(
                    "SMyesterday",
                    BODY,
                    "Wed, 23 Aug 2023 05:01:45 +0000",
                    "outbound-api",
                ),
            ],
            Some(NEXT_PAGE_URI),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("PageToken", "PAnext"))
        .respond_with(page(vec![], None))
        .expect(0)
        .mount(&server)
        .await;

    let found = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap();

    assert_eq!(found, None, "yesterday's identical text is not this alert");
}

#[tokio::test]
async fn find_sent_allows_for_clock_skew() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(page(
            vec![listed(
                "SMskewed",
                BODY,
                "Thu, 24 Aug 2023 04:58:00 +0000",
                "outbound-api",
            )],
            None,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let found = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap();

    assert_eq!(
        found.as_deref(),
        Some("SMskewed"),
        "2 minutes early is within the skew"
    );
}

#[tokio::test]
async fn find_sent_returns_none_when_no_page_matches() {
    let server = MockServer::start().await;
    mount_first_page(&server).await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("PageToken", "PAnext"))
        .respond_with(page(
            vec![listed(
                "SMolder",
                "farewatch: an older alert",
                "Thu, 24 Aug 2023 05:01:45 +0000",
                "outbound-api",
            )],
            None,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let found = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap();

    assert_eq!(found, None);
}

#[tokio::test]
async fn find_sent_stops_after_the_page_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(page(
            vec![listed(
                "SMother",
                "a different alert",
                "Thu, 24 Aug 2023 05:02:00 +0000",
                "outbound-api",
            )],
            Some(NEXT_PAGE_URI),
        ))
        .expect(MAX_RECONCILE_PAGES as u64)
        .mount(&server)
        .await;

    let err = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap_err();

    assert!(matches!(&err, NotifyError::Ambiguous(_)), "{err:?}");
}

#[tokio::test]
async fn find_sent_never_follows_a_page_to_another_host() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(page(
            vec![],
            Some("http://elsewhere.invalid/2010-04-01/Accounts/AC/Messages.json?Page=1"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap_err();

    assert!(matches!(&err, NotifyError::Ambiguous(_)), "{err:?}");
}

#[tokio::test]
async fn find_sent_classifies_errors_like_send() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(json_response(401, fixture!("twilio-error-20003.json")))
        .expect(1)
        .mount(&server)
        .await;

    let err = twilio(&server.uri())
        .find_sent(&to(), BODY, since())
        .await
        .unwrap_err();

    assert!(
        matches!(&err, NotifyError::Configuration { code: 20003, .. }),
        "{err:?}"
    );
}

// ---- secrets ----

#[test]
fn debug_never_shows_the_token() {
    let config = config("https://api.twilio.com", Sender::From(FROM.to_owned()));
    let notifier = Twilio::new(farewatch::upstream::http::build_client(), config.clone());
    for text in [
        format!("{config:?}"),
        format!("{notifier:?}"),
        format!("{notifier:#?}"),
    ] {
        assert!(!text.contains(AUTH_TOKEN), "{text}");
        assert!(text.contains(ACCOUNT_SID), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}
