//! A stateful Amadeus fake serving the recorded fixtures with deterministic
//! fault plans.
//!
//! - `POST /v1/security/oauth2/token` issues `token-1`, `token-2`, ... (the
//!   fixture's reply with another `access_token`), so a test can tell which
//!   token a search carried and count refreshes.
//! - `GET /v2/shopping/flight-offers` asks the plan what to answer, given the
//!   search's global number, its attempt number *for that lookup* (same query
//!   string) and the bearer token; the answer is one of [`Reply`], each built
//!   from the real fixture bodies. Every search is logged with its reply and
//!   the (real) instant it arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::fixture;

/// `access_token` in `amadeus-token.json`.
pub const FIXTURE_TOKEN: &str = "CpjU0sEenniHCgPDrndzOSWFk5mN";
pub const TOKEN_PATH: &str = "/v1/security/oauth2/token";
pub const SEARCH_PATH: &str = "/v2/shopping/flight-offers";
/// The offers every successful search returns: LHR-JFK, cheapest GBP 312.46.
pub const OFFERS: &str = "fares/amadeus-flight-offers-LHR-JFK.json";
/// The cheapest price in [`OFFERS`], in pence.
pub const OFFERS_CHEAPEST_MINOR: i64 = 312_46;

/// One search as the plan sees it.
#[derive(Debug, Clone)]
pub struct Search {
    /// Global 0-based number of this search.
    pub n: u64,
    /// 0-based attempt for this exact query (the pool's retries and the
    /// source's token replay both count).
    pub attempt: u32,
    /// `originLocationCode`.
    pub origin: String,
    /// `departureDate`.
    pub depart: String,
    /// The access token it carried (without `Bearer `).
    pub token: String,
}

/// What the fake answers to one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200 with [`OFFERS`].
    Offers,
    /// 500, code 38189 (`amadeus-error-500.json`).
    ServerError,
    /// 200 with [`OFFERS`], held back this long (a hung upstream).
    Hang(Duration),
    /// 429, code 38194 (`amadeus-error-429.json`), with `Retry-After` in
    /// seconds when given.
    Throttle { retry_after: Option<u64> },
    /// 401, code 38192 (`amadeus-error-401-expired-token.json`).
    TokenExpired,
    /// 429, code 38195 (`amadeus-error-429-quota.json`).
    QuotaExhausted,
}

/// Decides the reply to a search. It runs inside the fake's handler (with the
/// fake's state locked), so it may have side effects, such as killing a
/// process at a precise moment, but must not call back into the fake.
pub type SearchPlan = Arc<dyn Fn(&Search) -> Reply + Send + Sync>;

/// A search as it happened.
#[derive(Debug, Clone)]
pub struct Logged {
    pub search: Search,
    pub reply: Reply,
    pub at: Instant,
}

struct State {
    plan: SearchPlan,
    searches: u64,
    tokens: u64,
    attempts: HashMap<String, u32>,
    log: Vec<Logged>,
}

pub struct AmadeusFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
    searches_seen: watch::Receiver<u64>,
}

struct SearchResponder {
    state: Arc<Mutex<State>>,
    searches_seen: watch::Sender<u64>,
}

struct TokenResponder {
    state: Arc<Mutex<State>>,
}

impl AmadeusFake {
    pub async fn start(plan: impl Fn(&Search) -> Reply + Send + Sync + 'static) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            plan: Arc::new(plan),
            searches: 0,
            tokens: 0,
            attempts: HashMap::new(),
            log: Vec::new(),
        }));
        let (tx, rx) = watch::channel(0);
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(TokenResponder {
                state: state.clone(),
            })
            .named("amadeus token")
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(SEARCH_PATH))
            .respond_with(SearchResponder {
                state: state.clone(),
                searches_seen: tx,
            })
            .named("amadeus search")
            .mount(&server)
            .await;
        Self {
            server,
            state,
            searches_seen: rx,
        }
    }

    /// A fake that answers every search with [`OFFERS`].
    pub async fn healthy() -> Self {
        Self::start(|_| Reply::Offers).await
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_plan(&self, plan: impl Fn(&Search) -> Reply + Send + Sync + 'static) {
        self.lock().plan = Arc::new(plan);
    }

    /// Searches received.
    pub fn searches(&self) -> u64 {
        self.lock().searches
    }

    /// Token requests received.
    pub fn tokens(&self) -> u64 {
        self.lock().tokens
    }

    /// Every search with its reply, in arrival order.
    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// How many searches got `reply`.
    pub fn count(&self, reply: Reply) -> usize {
        self.lock().log.iter().filter(|l| l.reply == reply).count()
    }

    /// Resolves once at least `n` searches have arrived. No polling.
    pub async fn wait_for_searches(&self, n: u64) {
        let mut rx = self.searches_seen.clone();
        rx.wait_for(|&seen| seen >= n)
            .await
            .expect("the fake outlives its waiters");
    }
}

fn amadeus_json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/vnd.amadeus+json")
}

impl Respond for TokenResponder {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tokens += 1;
        let token = format!("token-{}", state.tokens);
        let body = fixture("fares/amadeus-token.json").replace(FIXTURE_TOKEN, &token);
        ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }
}

impl Respond for SearchResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (origin, depart) = (param("originLocationCode"), param("departureDate"));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let n = state.searches;
        state.searches += 1;
        let query = request.url.query().unwrap_or_default().to_owned();
        let attempt = {
            let slot = state.attempts.entry(query).or_insert(0);
            let attempt = *slot;
            *slot += 1;
            attempt
        };
        let search = Search {
            n,
            attempt,
            origin,
            depart,
            token,
        };
        let plan = state.plan.clone();
        let reply = if search.token.is_empty() {
            Reply::TokenExpired
        } else {
            plan(&search)
        };
        state.log.push(Logged {
            search,
            reply,
            at: Instant::now(),
        });
        drop(state);
        self.searches_seen.send_replace(n + 1);
        match reply {
            Reply::Offers => amadeus_json(200, fixture(OFFERS)),
            Reply::Hang(delay) => amadeus_json(200, fixture(OFFERS)).set_delay(delay),
            Reply::ServerError => amadeus_json(500, fixture("fares/amadeus-error-500.json")),
            Reply::Throttle { retry_after } => {
                let template = amadeus_json(429, fixture("fares/amadeus-error-429.json"));
                match retry_after {
                    Some(secs) => template.insert_header("Retry-After", secs.to_string()),
                    None => template,
                }
            }
            Reply::TokenExpired => {
                amadeus_json(401, fixture("fares/amadeus-error-401-expired-token.json"))
            }
            Reply::QuotaExhausted => {
                amadeus_json(429, fixture("fares/amadeus-error-429-quota.json"))
            }
        }
    }
}
