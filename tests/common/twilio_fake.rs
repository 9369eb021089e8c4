//! A stateful Twilio Messages fake.
//!
//! Unlike a canned `ResponseTemplate`, it keeps the account's message log the
//! way Twilio does: a `POST .../Messages.json` that is *accepted* is stored
//! (SID, `To`, `Body`, RFC 2822 dates, as in
//! `tests/fixtures/notify/twilio-message-created.json`) whatever the client
//! then sees, and `GET .../Messages.json` lists it. So a lost acknowledgement
//! (accepted, answered 500) is visible to reconciliation exactly as it would
//! be on the real API, and [`TwilioFake::accepted`] is the ground truth of
//! what recipients' phones received.
//!
//! The list behaves like Twilio's: newest first (by `date_created`), filtered
//! by `To`, `PageSize` messages a page (50 by default) with a `next_page_uri`
//! relative to the host while more remain, and an accepted message stays
//! `queued` with `date_sent: null` until [`TwilioFake::hand_to_carrier`]. A
//! `DateSent`/`DateSent>`/`DateSent<` filter, like Twilio's, compares
//! `date_sent`, so it never lists a queued message.
//!
//! What each POST does is decided by a deterministic plan keyed by the
//! POST's index (0-based, in arrival order): see [`Post`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Value};
use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{fixture, ACCOUNT_SID};

/// What the fake does with one `POST .../Messages.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// Accept the message and answer 201 with the message resource.
    Accept,
    /// Accept the message, then answer 500: the acknowledgement is lost.
    LoseAck,
    /// Answer 500 *without* accepting: just as ambiguous to the client, but
    /// nothing reached the phone, so reconciliation finds nothing.
    ServerError,
    /// Answer 429 / 20429 without accepting: "never processed".
    Throttle,
    /// Accept the message, then hold the 201 back for this long (a send the
    /// client is still waiting on, e.g. when its process is killed).
    AcceptThenHang(Duration),
}

/// Decides what POST number `n` (0-based) gets.
pub type PostPlan = Arc<dyn Fn(u64) -> Post + Send + Sync>;

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `SM...`.
    pub sid: String,
    /// The recipient.
    pub to: String,
    /// The sender.
    pub from: String,
    /// The text.
    pub body: String,
    /// When it was accepted.
    pub date_created: Timestamp,
}

struct State {
    plan: PostPlan,
    accepted: Vec<Accepted>,
    /// When each accepted message left the queue (`date_sent`), by index.
    sent_at: Vec<Option<Timestamp>>,
    posts: u64,
    lists: u64,
}

/// The fake: a wiremock server plus the account's message log.
pub struct TwilioFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
    /// Number of POSTs received so far (for waiting without sleeping).
    posts_seen: watch::Receiver<u64>,
}

struct Responder {
    state: Arc<Mutex<State>>,
    posts_seen: watch::Sender<u64>,
}

pub fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

/// RFC 2822 as Twilio writes it: `Thu, 24 Aug 2023 05:01:45 +0000`.
pub fn rfc2822(at: Timestamp) -> String {
    at.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

impl TwilioFake {
    /// Starts a fake that handles POST number `n` as `plan(n)` says.
    pub async fn start(plan: impl Fn(u64) -> Post + Send + Sync + 'static) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            plan: Arc::new(plan),
            accepted: Vec::new(),
            sent_at: Vec::new(),
            posts: 0,
            lists: 0,
        }));
        let (tx, rx) = watch::channel(0);
        Mock::given(path(messages_path()))
            .and(method("POST"))
            .respond_with(Responder {
                state: state.clone(),
                posts_seen: tx,
            })
            .named("twilio create message")
            .mount(&server)
            .await;
        let lister = Responder {
            state: state.clone(),
            posts_seen: watch::channel(0).0,
        };
        Mock::given(path(messages_path()))
            .and(method("GET"))
            .respond_with(lister)
            .named("twilio list messages")
            .mount(&server)
            .await;
        Self {
            server,
            state,
            posts_seen: rx,
        }
    }

    /// A fake that accepts everything.
    pub async fn accepting() -> Self {
        Self::start(|_| Post::Accept).await
    }

    /// The base URL to give the client.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the plan; POSTs keep their global numbering.
    pub fn set_plan(&self, plan: impl Fn(u64) -> Post + Send + Sync + 'static) {
        self.lock().plan = Arc::new(plan);
    }

    /// `(to, body)` of every accepted message, in acceptance order.
    pub fn accepted(&self) -> Vec<(String, String)> {
        self.lock()
            .accepted
            .iter()
            .map(|m| (m.to.clone(), m.body.clone()))
            .collect()
    }

    /// Every accepted message with its SID and date.
    pub fn accepted_messages(&self) -> Vec<Accepted> {
        self.lock().accepted.clone()
    }

    /// Every message still queued leaves the queue now: it gets a
    /// `date_sent` and the status `sent`, as when Twilio hands it to the
    /// carrier.
    pub fn hand_to_carrier(&self) {
        let now = Timestamp::now();
        for sent in &mut self.lock().sent_at {
            sent.get_or_insert(now);
        }
    }

    /// POSTs received (accepted or not).
    pub fn posts(&self) -> u64 {
        self.lock().posts
    }

    /// List (reconciliation) requests received.
    pub fn lists(&self) -> u64 {
        self.lock().lists
    }

    /// Resolves once at least `n` POSTs have been received (and, for
    /// accepting plans, stored). Signalled by the responder: no polling.
    pub async fn wait_for_posts(&self, n: u64) {
        let mut rx = self.posts_seen.clone();
        rx.wait_for(|&seen| seen >= n)
            .await
            .expect("the fake outlives its waiters");
    }
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let authorized = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic "));
        if !authorized {
            return ResponseTemplate::new(401).set_body_raw(
                fixture("notify/twilio-error-20003.json"),
                "application/json",
            );
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if request.method == wiremock::http::Method::GET {
            state.lists += 1;
            return ResponseTemplate::new(200).set_body_json(list_page(&state, request));
        }

        let n = state.posts;
        state.posts += 1;
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (Some(to), Some(body)) = (get("To"), get("Body")) else {
            drop(state);
            self.posts_seen.send_replace(n + 1);
            return ResponseTemplate::new(400).set_body_json(json!({
                "code": 21604, "message": "A 'To' phone number is required.",
                "more_info": "https://www.twilio.com/docs/errors/21604", "status": 400
            }));
        };
        let plan = state.plan.clone();
        let fault = plan(n);
        let response = if fault == Post::Throttle {
            ResponseTemplate::new(429).set_body_raw(
                fixture("notify/twilio-error-20429.json"),
                "application/json",
            )
        } else if fault == Post::ServerError {
            server_error()
        } else {
            let message = Accepted {
                sid: format!("SM{:032x}", n + 1),
                to,
                from: get("From").unwrap_or_default(),
                body,
                date_created: Timestamp::now(),
            };
            let resource = resource(&message, None);
            state.accepted.push(message);
            state.sent_at.push(None);
            match fault {
                Post::Accept => ResponseTemplate::new(201).set_body_json(resource),
                Post::AcceptThenHang(delay) => ResponseTemplate::new(201)
                    .set_body_json(resource)
                    .set_delay(delay),
                Post::LoseAck => server_error(),
                Post::Throttle | Post::ServerError => unreachable!(),
            }
        };
        // Signal after the message is stored, so a waiter sees it accepted.
        drop(state);
        self.posts_seen.send_replace(n + 1);
        response
    }
}

/// Twilio's 500 (20500) body.
fn server_error() -> ResponseTemplate {
    ResponseTemplate::new(500).set_body_json(json!({
        "code": 20500, "message": "An internal server error has occurred",
        "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500
    }))
}

/// The message resource in the shape of the fixture: `queued` with
/// `date_sent: null` until it has a `sent_at`, then `sent`.
fn resource(message: &Accepted, sent_at: Option<Timestamp>) -> Value {
    let mut value: Value =
        serde_json::from_str(&fixture("notify/twilio-message-created.json")).unwrap();
    let date = rfc2822(message.date_created);
    let uri = format!(
        "/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{}.json",
        message.sid
    );
    value["sid"] = message.sid.clone().into();
    value["to"] = message.to.clone().into();
    value["from"] = message.from.clone().into();
    value["body"] = message.body.clone().into();
    value["messaging_service_sid"] = Value::Null;
    value["status"] = if sent_at.is_some() { "sent" } else { "queued" }.into();
    value["date_created"] = date.clone().into();
    value["date_sent"] = sent_at.map_or(Value::Null, |at| rfc2822(at).into());
    value["date_updated"] = rfc2822(sent_at.unwrap_or(message.date_created)).into();
    value["subresource_uris"]["media"] = uri.replace(".json", "/Media.json").into();
    value["uri"] = uri.into();
    value
}

/// Twilio's default page size for list calls.
const DEFAULT_PAGE_SIZE: usize = 50;

/// One page of the message list, as Twilio serves it: newest first, `To`
/// and `DateSent` filters (on `date_sent`, so never a queued message),
/// `PageSize` (default 50, at most 1000) and `Page`, with `next_page_uri`
/// while more remain.
fn list_page(state: &State, request: &Request) -> Value {
    let mut to = None;
    let mut page_size = DEFAULT_PAGE_SIZE;
    let mut page = 0usize;
    let mut sent_filter: Option<(std::cmp::Ordering, jiff::civil::Date)> = None;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (key, value) in request.url.query_pairs() {
        match key.as_ref() {
            "To" => to = Some(value.to_string()),
            "PageSize" => page_size = value.parse().unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, 1000),
            "Page" => page = value.parse().unwrap_or(0),
            "DateSent" => sent_filter = value.parse().ok().map(|d| (std::cmp::Ordering::Equal, d)),
            "DateSent>" | "DateSent>=" => {
                sent_filter = value.parse().ok().map(|d| (std::cmp::Ordering::Greater, d))
            }
            "DateSent<" | "DateSent<=" => {
                sent_filter = value.parse().ok().map(|d| (std::cmp::Ordering::Less, d))
            }
            _ => {}
        }
        if !matches!(key.as_ref(), "Page" | "PageToken") {
            kept.push((key.into_owned(), value.into_owned()));
        }
    }
    let mut listed: Vec<(&Accepted, Option<Timestamp>)> = state
        .accepted
        .iter()
        .zip(state.sent_at.iter().copied())
        .filter(|(m, _)| to.as_deref().is_none_or(|t| t == m.to))
        .filter(|(_, sent)| match sent_filter {
            None => true,
            Some((ordering, day)) => sent.is_some_and(|at| {
                let sent_day = at.to_zoned(jiff::tz::TimeZone::UTC).date();
                sent_day == day || sent_day.cmp(&day) == ordering
            }),
        })
        .collect();
    // Newest first; among equal creation times, the later accepted first.
    listed.reverse();
    listed.sort_by_key(|(m, _)| std::cmp::Reverse(m.date_created));
    let start = page.saturating_mul(page_size).min(listed.len());
    let end = (start + page_size).min(listed.len());
    let messages: Vec<Value> = listed[start..end]
        .iter()
        .map(|(m, sent)| resource(m, *sent))
        .collect();
    let page_uri = |n: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        query.append_pair("Page", &n.to_string());
        if n > 0 {
            query.append_pair("PageToken", &format!("PASM{:032x}", n));
        }
        format!("{}?{}", request.url.path(), query.finish())
    };
    json!({
        "messages": messages,
        "end": end.saturating_sub(1),
        "first_page_uri": page_uri(0),
        "next_page_uri": (end < listed.len()).then(|| page_uri(page + 1)),
        "page": page,
        "page_size": page_size,
        "previous_page_uri": (page > 0).then(|| page_uri(page - 1)),
        "start": start,
        "uri": page_uri(page),
    })
}
