//! The Amadeus fare source against a wiremock fake serving the recorded
//! fixtures in `tests/fixtures/fares/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use farewatch::domain::{Currency, Iata, Itinerary, LookupKey, Money};
use farewatch::fare::amadeus::{Amadeus, AmadeusConfig, DEFAULT_BASE_URL, PRODUCTION_BASE_URL};
use farewatch::fare::FareSource;
use farewatch::store::TokenCache;
use farewatch::upstream::UpstreamError;
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

macro_rules! fixture {
    ($name:literal) => {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fares/",
            $name
        ))
        .expect(concat!("fixture ", $name))
    };
}

const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "s3cr3t-never-print-me";
/// `access_token` in `amadeus-token.json`.
const FIXTURE_TOKEN: &str = "CpjU0sEenniHCgPDrndzOSWFk5mN";
const TOKEN_PATH: &str = "/v1/security/oauth2/token";
const SEARCH_PATH: &str = "/v2/shopping/flight-offers";

fn amadeus_json(status: u16, body: impl Into<Vec<u8>>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), "application/vnd.amadeus+json")
}

/// A token reply like the fixture's, with another `access_token`.
fn token_reply(token: &str) -> ResponseTemplate {
    let body = fixture!("amadeus-token.json").replace(FIXTURE_TOKEN, token);
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

fn config(server: &MockServer, timeout: Duration) -> AmadeusConfig {
    AmadeusConfig {
        base_url: server.uri(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        timeout,
    }
}

fn source(server: &MockServer) -> Amadeus {
    Amadeus::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(10)),
        None,
    )
}

fn source_with_cache(server: &MockServer, cache: Arc<MemoryTokens>) -> Amadeus {
    Amadeus::new(
        farewatch::upstream::http::build_client(),
        config(server, Duration::from_secs(10)),
        Some(cache),
    )
}

fn cache_key(server: &MockServer) -> String {
    format!("amadeus:{CLIENT_ID}:{}", server.uri())
}

fn key(
    origin: &str,
    destination: &str,
    depart: &str,
    ret: Option<&str>,
    currency: &str,
) -> LookupKey {
    LookupKey {
        origin: Iata::parse(origin).unwrap(),
        destination: Iata::parse(destination).unwrap(),
        depart: depart.parse().unwrap(),
        return_date: ret.map(|r| r.parse().unwrap()),
        adults: 1,
        currency: Currency::parse(currency).unwrap(),
        max_stops: None,
    }
}

fn lhr_jfk() -> LookupKey {
    key("LHR", "JFK", "2027-03-01", None, "GBP")
}

fn money(minor: i64, currency: &str) -> Money {
    Money::from_minor(minor, Currency::parse(currency).unwrap())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The token endpoint answering with the fixture token.
async fn mount_token(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .expect(times)
        .named("token")
        .mount(server)
        .await;
}

/// The search endpoint answering `template` to requests signed with `token`.
async fn mount_search(server: &MockServer, token: &str, template: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(header("authorization", bearer(token).as_str()))
        .respond_with(template)
        .expect(times)
        .named(format!("search with {token}"))
        .mount(server)
        .await;
}

/// The token endpoint handing out `first` once, then `second` for every later request.
async fn mount_two_tokens(server: &MockServer, first: &str, second: &str, second_times: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(first))
        .up_to_n_times(1)
        .expect(1)
        .named("first token")
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_reply(second))
        .expect(second_times)
        .named("second token")
        .with_priority(2)
        .mount(server)
        .await;
}

/// Matches when the request's form body has exactly these fields (any order).
fn form_is(expected: &'static [(&'static str, &'static str)]) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        let mut got: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        got == want
    }
}

/// Matches when the query string has exactly these parameters (any order).
fn query_is(expected: Vec<(&'static str, &'static str)>) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        let mut got: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        got == want
    }
}

/// A deliberately naive [`TokenCache`]: it returns whatever was saved, expired
/// or not, so the tests exercise the source's own expiry check.
#[derive(Default)]
struct MemoryTokens {
    entries: Mutex<HashMap<String, (String, Timestamp)>>,
    saves: Mutex<u32>,
}

impl MemoryTokens {
    fn with(key: String, token: &str, expires_at: Timestamp) -> Arc<Self> {
        let cache = Self::default();
        cache
            .entries
            .lock()
            .unwrap()
            .insert(key, (token.to_owned(), expires_at));
        Arc::new(cache)
    }

    fn get(&self, key: &str) -> Option<(String, Timestamp)> {
        self.entries.lock().unwrap().get(key).cloned()
    }
}

#[async_trait]
impl TokenCache for MemoryTokens {
    async fn load_token(&self, key: &str) -> Option<(String, Timestamp)> {
        self.get(key)
    }

    async fn save_token(&self, key: &str, token: &str, expires_at: Timestamp) {
        *self.saves.lock().unwrap() += 1;
        self.entries
            .lock()
            .unwrap()
            .insert(key.to_owned(), (token.to_owned(), expires_at));
    }
}

// ----- requests ------------------------------------------------------------

#[tokio::test]
async fn sends_the_exact_token_and_search_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(form_is(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]))
        .respond_with(token_reply(FIXTURE_TOKEN))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("originLocationCode", "LHR"),
            ("destinationLocationCode", "JFK"),
            ("departureDate", "2027-03-01"),
            ("adults", "1"),
            ("currencyCode", "GBP"),
            ("max", "50"),
        ]))
        .and(header("authorization", bearer(FIXTURE_TOKEN).as_str()))
        .and(|r: &Request| {
            r.headers.get("accept").map(|v| v.as_bytes())
                == Some(&b"application/vnd.amadeus+json, application/json"[..])
        })
        .respond_with(amadeus_json(
            200,
            fixture!("amadeus-flight-offers-LHR-JFK.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap();
    assert!(quote.is_some());
}

#[tokio::test]
async fn a_round_trip_sends_return_date_and_prices_the_gig_mad_fixture_in_usd() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(vec![
            ("originLocationCode", "GIG"),
            ("destinationLocationCode", "MAD"),
            ("departureDate", "2027-08-01"),
            ("returnDate", "2027-08-15"),
            ("adults", "1"),
            ("currencyCode", "USD"),
            ("max", "50"),
        ]))
        .respond_with(amadeus_json(
            200,
            fixture!("amadeus-flight-offers-GIG-MAD-roundtrip-sdk.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let key = key("GIG", "MAD", "2027-08-01", Some("2027-08-15"), "USD");
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    // Both offers in the fixture cost grandTotal "3842.10" USD.
    assert_eq!(quote.price, money(384_210, "USD"));
    // Offer "1"'s outbound: BA GIG-LHR, BA LHR-MAD, "PT15H55M"; the carrier
    // name is the fixture's `dictionaries.carriers.BA`.
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("BRITISH AIRWAYS".to_owned()),
            stops: Some(1),
            duration_minutes: Some(15 * 60 + 55),
        })
    );
}

// ----- successful searches ---------------------------------------------------

#[tokio::test]
async fn picks_the_cheapest_lhr_jfk_offer() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        1,
    )
    .await;

    let before = Timestamp::now();
    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap().unwrap();
    // Offers cost 312.46, 398.71, 415.32 and 415.32 GBP.
    assert_eq!(quote.price, money(31_246, "GBP"));
    assert_eq!(quote.provider, "amadeus");
    assert!(!quote.cached);
    assert_eq!(quote.link, None);
    assert!(quote.fetched_at >= before && quote.fetched_at <= Timestamp::now());
    // The 312.46 offer: EI LHR-DUB, EI DUB-JFK, "PT11H45M".
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("AER LINGUS".to_owned()),
            stops: Some(1),
            duration_minutes: Some(11 * 60 + 45),
        })
    );
}

/// A search for `key` answering the LHR-JFK fixture, matching `query` exactly.
async fn lhr_jfk_search(
    key: &LookupKey,
    query: Vec<(&'static str, &'static str)>,
) -> Option<farewatch::domain::Quote> {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .and(query_is(query))
        .respond_with(amadeus_json(
            200,
            fixture!("amadeus-flight-offers-LHR-JFK.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    source(&server).cheapest(key).await.unwrap()
}

#[tokio::test]
async fn direct_only_is_sent_as_non_stop_and_skips_the_connecting_offer() {
    let mut key = lhr_jfk();
    key.max_stops = Some(0);
    let quote = lhr_jfk_search(
        &key,
        vec![
            ("originLocationCode", "LHR"),
            ("destinationLocationCode", "JFK"),
            ("departureDate", "2027-03-01"),
            ("adults", "1"),
            ("nonStop", "true"),
            ("currencyCode", "GBP"),
            ("max", "50"),
        ],
    )
    .await
    .unwrap();
    // The fake sends the 312.46 EI offer via Dublin anyway; it is skipped
    // for the cheapest nonstop, VS at 398.71 ("PT7H55M").
    assert_eq!(quote.price, money(39_871, "GBP"));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("VIRGIN ATLANTIC".to_owned()),
            stops: Some(0),
            duration_minutes: Some(7 * 60 + 55),
        })
    );
}

#[tokio::test]
async fn a_looser_limit_has_no_amadeus_parameter_and_is_applied_to_the_reply() {
    let mut key = lhr_jfk();
    key.max_stops = Some(1);
    let quote = lhr_jfk_search(
        &key,
        vec![
            ("originLocationCode", "LHR"),
            ("destinationLocationCode", "JFK"),
            ("departureDate", "2027-03-01"),
            ("adults", "1"),
            ("currencyCode", "GBP"),
            ("max", "50"),
        ],
    )
    .await
    .unwrap();
    // One stop is allowed: the EI offer via Dublin is the cheapest.
    assert_eq!(quote.price, money(31_246, "GBP"));
    assert_eq!(quote.itinerary.unwrap().stops, Some(1));
}

#[tokio::test]
async fn no_offer_within_the_limit_is_no_fare() {
    // Both spec offers fly SYD-MNL-BKK.
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-SYD-BKK-spec.json")),
        1,
    )
    .await;
    let mut key = key("SYD", "BKK", "2027-11-01", None, "EUR");
    key.max_stops = Some(0);
    assert_eq!(source(&server).cheapest(&key).await, Ok(None));
}

#[tokio::test]
async fn every_itinerary_of_a_round_trip_must_be_within_the_limit() {
    // Offer "1" of the GIG-MAD fixture made direct on the way out (its
    // LHR-MAD segment dropped); its return via GRU still has a stop.
    let mut body: serde_json::Value = serde_json::from_str(&fixture!(
        "amadeus-flight-offers-GIG-MAD-roundtrip-sdk.json"
    ))
    .unwrap();
    let segments = body["data"][0]["itineraries"][0]["segments"]
        .as_array_mut()
        .unwrap();
    segments.truncate(1);
    let edited = body.to_string();
    let search = |max_stops: u8| {
        let edited = edited.clone();
        async move {
            let server = MockServer::start().await;
            mount_token(&server, 1).await;
            mount_search(&server, FIXTURE_TOKEN, amadeus_json(200, edited), 1).await;
            let mut key = key("GIG", "MAD", "2027-08-01", Some("2027-08-15"), "USD");
            key.max_stops = Some(max_stops);
            source(&server).cheapest(&key).await
        }
    };
    assert_eq!(search(0).await, Ok(None));
    let quote = search(1).await.unwrap().unwrap();
    assert_eq!(quote.price, money(384_210, "USD"));
    // The first of the two equal offers, with its now direct outbound.
    assert_eq!(quote.itinerary.unwrap().stops, Some(0));
}

#[tokio::test]
async fn carriers_missing_from_the_dictionaries_are_named_by_code() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let body = r#"{"data":[{"price":{"currency":"GBP","grandTotal":"99.00"},
        "itineraries":[{"duration":"PT8H","segments":[
            {"carrierCode":"XQ","numberOfStops":1}]}]}]}"#;
    mount_search(&server, FIXTURE_TOKEN, amadeus_json(200, body), 1).await;

    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap().unwrap();
    // One segment that lands on the way: a stop all the same.
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("XQ".to_owned()),
            stops: Some(1),
            duration_minutes: Some(480),
        })
    );
}

#[tokio::test]
async fn malformed_flights_or_dictionaries_lose_the_flights_never_the_price() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    // Offer 1 (cheapest): itineraries not a list; offer 2: a segment that is
    // not an object; offer 3: readable flights but a malformed dictionary.
    let body = r#"{"data":[
        {"price":{"currency":"GBP","grandTotal":"90.00"},"itineraries":"soon"},
        {"price":{"currency":"GBP","grandTotal":"95.00"},
         "itineraries":[{"duration":"PT8H","segments":[7]}]},
        {"price":{"currency":"GBP","grandTotal":"99.00"},
         "itineraries":[{"duration":"PT8H","segments":[{"carrierCode":"BA"}]}]}],
        "dictionaries":{"carriers":["BA"]}}"#;
    mount_search(&server, FIXTURE_TOKEN, amadeus_json(200, body), 1).await;
    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(9_000, "GBP"));
    assert_eq!(quote.itinerary, None, "nothing invented");

    // With a stop limit, offers whose stops cannot be counted are out; the
    // third's airline is named by its code (the dictionary is unreadable).
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(&server, FIXTURE_TOKEN, amadeus_json(200, body), 1).await;
    let mut key = lhr_jfk();
    key.max_stops = Some(0);
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    assert_eq!(quote.price, money(9_900, "GBP"));
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("BA".to_owned()),
            stops: Some(0),
            duration_minutes: Some(480),
        })
    );
}

#[tokio::test]
async fn returns_the_reply_currency_even_when_another_was_asked_for() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-SYD-BKK-spec.json")),
        1,
    )
    .await;

    let key = key("SYD", "BKK", "2027-11-01", None, "GBP");
    let quote = source(&server).cheapest(&key).await.unwrap().unwrap();
    // The spec example prices both offers at grandTotal "355.34" EUR.
    assert_eq!(quote.price, money(35_534, "EUR"));
    // The first of the tie: PR SYD-MNL, PR MNL-BKK, "PT14H15M".
    assert_eq!(
        quote.itinerary,
        Some(Itinerary {
            airline: Some("PHILIPPINE AIRLINES".to_owned()),
            stops: Some(1),
            duration_minutes: Some(14 * 60 + 15),
        })
    );
}

#[tokio::test]
async fn falls_back_to_total_when_grand_total_is_missing() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let body = r#"{"data":[
        {"price":{"currency":"GBP","total":"120.50"}},
        {"price":{"currency":"GBP","total":"99.99","grandTotal":"101.00"}},
        {"price":{"currency":"GBP","total":"100.004"}}]}"#;
    mount_search(&server, FIXTURE_TOKEN, amadeus_json(200, body), 1).await;

    let quote = source(&server).cheapest(&lhr_jfk()).await.unwrap().unwrap();
    assert_eq!(quote.price, money(10_000, "GBP"));
    // No itineraries: nothing invented.
    assert_eq!(quote.itinerary, None);
}

#[tokio::test]
async fn no_offers_is_none() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-empty.json")),
        1,
    )
    .await;

    assert_eq!(source(&server).cheapest(&lhr_jfk()).await, Ok(None));
}

// ----- token reuse and caching -------------------------------------------------

#[tokio::test]
async fn reuses_the_token_across_lookups() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        2,
    )
    .await;

    let amadeus = source(&server);
    amadeus.cheapest(&lhr_jfk()).await.unwrap();
    amadeus.cheapest(&lhr_jfk()).await.unwrap();
}

#[tokio::test]
async fn an_unusable_base_url_is_reported_by_name_not_panicked_on() {
    let base_url = "http://not a host";
    let cache = MemoryTokens::with(
        format!("amadeus:{CLIENT_ID}:{base_url}"),
        "token-from-an-earlier-run",
        Timestamp::now() + SignedDuration::from_mins(20),
    );
    let amadeus = Amadeus::new(
        farewatch::upstream::http::build_client(),
        AmadeusConfig {
            base_url: base_url.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            client_secret: SecretString::from(CLIENT_SECRET),
            timeout: Duration::from_secs(10),
        },
        Some(cache),
    );
    match amadeus.cheapest(&lhr_jfk()).await {
        Err(UpstreamError::Connect(message)) => {
            assert!(message.contains("\"http://not a host\""), "{message}");
            assert!(!message.contains(CLIENT_SECRET), "{message}");
        }
        other => panic!("expected a connect error naming the URL, got {other:?}"),
    }
}

#[tokio::test]
async fn uses_a_fresh_token_from_the_cache_without_asking_for_one() {
    let server = MockServer::start().await;
    mount_token(&server, 0).await;
    mount_search(
        &server,
        "token-from-an-earlier-run",
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        1,
    )
    .await;
    let cache = MemoryTokens::with(
        cache_key(&server),
        "token-from-an-earlier-run",
        Timestamp::now() + SignedDuration::from_mins(20),
    );

    let quote = source_with_cache(&server, cache.clone())
        .cheapest(&lhr_jfk())
        .await;
    assert_eq!(quote.unwrap().unwrap().price, money(31_246, "GBP"));
    assert_eq!(*cache.saves.lock().unwrap(), 0);
}

#[tokio::test]
async fn ignores_cached_tokens_that_expired_or_expire_within_the_buffer() {
    // Already expired, and 5 s short of expiry (inside the 10 s buffer).
    for expires_in_secs in [-60, 5] {
        let server = MockServer::start().await;
        mount_token(&server, 1).await;
        mount_search(&server, "stale-token", amadeus_json(200, "{}"), 0).await;
        mount_search(
            &server,
            FIXTURE_TOKEN,
            amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
            1,
        )
        .await;
        let cache = MemoryTokens::with(
            cache_key(&server),
            "stale-token",
            Timestamp::now() + SignedDuration::from_secs(expires_in_secs),
        );

        let quote = source_with_cache(&server, cache).cheapest(&lhr_jfk()).await;
        assert_eq!(quote.unwrap().unwrap().price, money(31_246, "GBP"));
        server.verify().await;
    }
}

#[tokio::test]
async fn saves_a_fetched_token_to_the_cache() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        1,
    )
    .await;
    let cache = Arc::new(MemoryTokens::default());

    let before = Timestamp::now();
    source_with_cache(&server, cache.clone())
        .cheapest(&lhr_jfk())
        .await
        .unwrap();
    let after = Timestamp::now();

    let (token, expires_at) = cache.get(&cache_key(&server)).expect("token saved");
    assert_eq!(token, FIXTURE_TOKEN);
    // expires_in is 1799 s, counted from when the token was requested.
    let lifetime = SignedDuration::from_secs(1799);
    assert!(expires_at >= before + lifetime && expires_at <= after + lifetime);
    assert_eq!(*cache.saves.lock().unwrap(), 1);
}

// ----- rejected tokens -----------------------------------------------------------

/// A 401 with `fixture` for the first token, then success with the second.
async fn refreshes_and_replays_once_after(fixture: &str) {
    let server = MockServer::start().await;
    mount_two_tokens(&server, "old-token", "new-token", 1).await;
    mount_search(&server, "old-token", amadeus_json(401, fixture), 1).await;
    mount_search(
        &server,
        "new-token",
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        1,
    )
    .await;
    let cache = Arc::new(MemoryTokens::default());

    let quote = source_with_cache(&server, cache.clone())
        .cheapest(&lhr_jfk())
        .await;
    assert_eq!(quote.unwrap().unwrap().price, money(31_246, "GBP"));
    // The replacement is what later runs will pick up.
    assert_eq!(cache.get(&cache_key(&server)).unwrap().0, "new-token");
}

#[tokio::test]
async fn an_invalid_token_is_refreshed_and_the_search_replayed() {
    refreshes_and_replays_once_after(&fixture!("amadeus-error-401-invalid-token.json")).await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_search_replayed() {
    refreshes_and_replays_once_after(&fixture!("amadeus-error-401-expired-token.json")).await;
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_and_the_search_replayed() {
    let body = r#"{"errors":[{"code":38193,"title":"Access token revoked","status":401}]}"#;
    refreshes_and_replays_once_after(body).await;
}

#[tokio::test]
async fn a_401_without_a_body_is_treated_as_a_rejected_token() {
    refreshes_and_replays_once_after("").await;
}

#[tokio::test]
async fn a_second_401_after_refreshing_is_an_auth_error() {
    let server = MockServer::start().await;
    mount_two_tokens(&server, "old-token", "new-token", 1).await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(amadeus_json(
            401,
            fixture!("amadeus-error-401-expired-token.json"),
        ))
        .expect(2)
        .mount(&server)
        .await;

    let error = source(&server).cheapest(&lhr_jfk()).await.unwrap_err();
    let UpstreamError::Auth(message) = error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("38192"), "{message}");
    assert!(message.contains("AMADEUS_CLIENT_ID"), "{message}");
}

#[tokio::test]
async fn an_invalid_authorization_header_fails_without_refreshing() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(401, fixture!("amadeus-error-401-invalid-header.json")),
        1,
    )
    .await;

    let error = source(&server).cheapest(&lhr_jfk()).await.unwrap_err();
    let UpstreamError::Auth(message) = error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("code 38191"), "{message}");
    assert!(message.contains("Invalid HTTP header"), "{message}");
}

#[tokio::test]
async fn a_revoked_api_key_fails_without_refreshing() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let body = r#"{"errors":[{"code":39683,"title":"API key revoked","status":401}]}"#;
    mount_search(&server, FIXTURE_TOKEN, amadeus_json(401, body), 1).await;

    let error = source(&server).cheapest(&lhr_jfk()).await.unwrap_err();
    let UpstreamError::Auth(message) = error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("revoked"), "{message}");
    assert!(message.contains("AMADEUS_CLIENT_SECRET"), "{message}");
}

#[tokio::test]
async fn concurrent_401s_cause_exactly_one_refresh() {
    let server = MockServer::start().await;
    // One token for the first requests, one refresh: two token requests in all.
    mount_two_tokens(&server, "old-token", "new-token", 1).await;
    mount_search(
        &server,
        "old-token",
        amadeus_json(401, fixture!("amadeus-error-401-expired-token.json")),
        20,
    )
    .await;
    mount_search(
        &server,
        "new-token",
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        20,
    )
    .await;

    // Polled together in one task: the 20 lookups queue on the token lock
    // behind the first fetch, all sign with the old token in the same pass,
    // and then all see a 401 for it. Spawned tasks on a busy machine may
    // instead start after the refresh, which would prove nothing.
    let amadeus = source(&server);
    let key = lhr_jfk();
    let results = futures::future::join_all((0..20).map(|_| amadeus.cheapest(&key))).await;
    for result in results {
        assert_eq!(result.unwrap().unwrap().price, money(31_246, "GBP"));
    }
}

// ----- token endpoint errors -------------------------------------------------------

#[tokio::test]
async fn invalid_client_credentials_are_an_auth_error_naming_the_variables() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(amadeus_json(
            401,
            fixture!("amadeus-token-error-invalid-client.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(SEARCH_PATH))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;

    let error = source(&server).cheapest(&lhr_jfk()).await.unwrap_err();
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(
        message.contains("Client credentials are invalid"),
        "{message}"
    );
    assert!(message.contains("AMADEUS_CLIENT_ID"), "{message}");
    assert!(message.contains("AMADEUS_CLIENT_SECRET"), "{message}");
    assert!(!error.to_string().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn an_unsupported_grant_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(amadeus_json(
            400,
            fixture!("amadeus-token-error-unsupported-grant.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(SEARCH_PATH))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;

    let error = source(&server).cheapest(&lhr_jfk()).await.unwrap_err();
    let UpstreamError::Auth(message) = &error else {
        panic!("expected Auth, got {error:?}");
    };
    assert!(message.contains("HTTP 400, code 38187"), "{message}");
    assert!(message.contains("unsupported_grant_type"), "{message}");
}

#[tokio::test]
async fn concurrent_lookups_share_one_failed_token_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(amadeus_json(
            401,
            fixture!("amadeus-token-error-invalid-client.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;

    let amadeus = source(&server);
    let key = lhr_jfk();
    let results = futures::future::join_all((0..20).map(|_| amadeus.cheapest(&key))).await;
    for result in results {
        assert!(matches!(result, Err(UpstreamError::Auth(_))), "{result:?}");
    }
}

// ----- search errors -------------------------------------------------------------

async fn search_error(status: u16, body: impl Into<Vec<u8>>) -> UpstreamError {
    search_error_with(amadeus_json(status, body)).await
}

async fn search_error_with(template: ResponseTemplate) -> UpstreamError {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(&server, FIXTURE_TOKEN, template, 1).await;
    source(&server).cheapest(&lhr_jfk()).await.unwrap_err()
}

#[tokio::test]
async fn a_400_is_rejected_with_title_detail_and_parameter() {
    assert_eq!(
        search_error(400, fixture!("amadeus-error-400.json")).await,
        UpstreamError::Rejected {
            status: 400,
            code: Some("477".into()),
            message: "INVALID FORMAT: invalid query parameter format (parameter `airport`)".into(),
        }
    );
    assert_eq!(
        search_error(400, fixture!("amadeus-error-400-past-date.json")).await,
        UpstreamError::Rejected {
            status: 400,
            code: Some("425".into()),
            message: "INVALID DATE: Date/Time is in the past (parameter `departureDate`)".into(),
        }
    );
    let error = search_error(
        400,
        fixture!("amadeus-error-400-invalid-format-origin.json"),
    )
    .await;
    let UpstreamError::Rejected {
        status,
        code,
        message,
    } = error
    else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!((status, code.as_deref()), (400, Some("477")));
    assert!(
        message.starts_with("INVALID FORMAT: City/Airport - 3 characters"),
        "{message}"
    );
    assert!(message.ends_with("(parameter `origin`)"), "{message}");
}

#[tokio::test]
async fn a_404_is_rejected() {
    let body = r#"{"errors":[{"status":404,"code":38196,"title":"Resource not found","detail":"The targeted resource doesn't exist"}]}"#;
    assert_eq!(
        search_error(404, body).await,
        UpstreamError::Rejected {
            status: 404,
            code: Some("38196".into()),
            message: "Resource not found: The targeted resource doesn't exist".into(),
        }
    );
}

#[tokio::test]
async fn a_429_throttle_is_rate_limited() {
    assert_eq!(
        search_error(429, fixture!("amadeus-error-429.json")).await,
        UpstreamError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn a_429_honours_retry_after_when_sent() {
    let template =
        amadeus_json(429, fixture!("amadeus-error-429.json")).insert_header("retry-after", "7");
    assert_eq!(
        search_error_with(template).await,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn a_429_without_a_recognisable_body_is_rate_limited() {
    let template = ResponseTemplate::new(429).set_body_raw("slow down", "text/plain");
    assert_eq!(
        search_error_with(template).await,
        UpstreamError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn a_429_quota_is_quota_exhausted() {
    assert_eq!(
        search_error(429, fixture!("amadeus-error-429-quota.json")).await,
        UpstreamError::QuotaExhausted("Quota limit exceeded: The quota limit is exceeded.".into())
    );
}

#[tokio::test]
async fn a_500_is_upstream_with_its_code() {
    assert_eq!(
        search_error(500, fixture!("amadeus-error-500.json")).await,
        UpstreamError::Upstream {
            status: 500,
            code: Some("38189".into()),
            message: "Internal error: An internal error occured, please contact your administrator"
                .into(),
        }
    );
}

#[tokio::test]
async fn an_unreadable_error_body_keeps_the_status_and_a_short_clean_excerpt() {
    let html = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>{}</body></html>",
        "padding ".repeat(100)
    );
    let template = ResponseTemplate::new(502).set_body_raw(html, "text/html");
    let error = search_error_with(template).await;
    let UpstreamError::Upstream {
        status,
        code,
        message,
    } = error
    else {
        panic!("expected Upstream, got {error:?}");
    };
    assert_eq!((status, code), (502, None));
    assert!(
        message.starts_with("unrecognised error body: <html> <head><title>502 Bad Gateway"),
        "{message}"
    );
    let excerpt = message.trim_start_matches("unrecognised error body: ");
    assert!(
        excerpt.chars().count() <= 201,
        "{} chars",
        excerpt.chars().count()
    );
    assert!(!message.contains('\n'));
}

// ----- unreadable successes --------------------------------------------------------

#[tokio::test]
async fn an_html_200_is_a_decode_error_saying_what_arrived() {
    let template = ResponseTemplate::new(200)
        .set_body_raw("<html><body>Service maintenance</body></html>", "text/html");
    let error = search_error_with(template).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("`text/html`"), "{message}");
    assert!(message.contains("Service maintenance"), "{message}");
}

#[tokio::test]
async fn truncated_json_is_a_decode_error() {
    let full = fixture!("amadeus-flight-offers-LHR-JFK.json");
    let error = search_error(200, &full.as_bytes()[..full.len() / 2]).await;
    let UpstreamError::Decode(message) = error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(message.contains("EOF while parsing"), "{message}");
}

#[tokio::test]
async fn a_body_over_the_cap_is_a_decode_error() {
    let huge = vec![b' '; 9 * 1024 * 1024];
    let error = search_error(200, huge).await;
    assert_eq!(
        error,
        UpstreamError::Decode(format!(
            "reply larger than {} bytes",
            farewatch::upstream::http::MAX_BODY_BYTES
        ))
    );
}

// ----- transport -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_search_times_out_after_the_configured_timeout() {
    // Not from wiremock's pool: with the clock paused the client may give up
    // before the server has even read the request, and a pooled server would
    // record that stray request in whichever test uses it next.
    let server = MockServer::builder().start().await;
    mount_token(&server, 0).await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(
            amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json"))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    // A cached token keeps the token request out of a test whose clock jumps
    // whenever the runtime waits on the fake server.
    let cache = MemoryTokens::with(
        cache_key(&server),
        FIXTURE_TOKEN,
        Timestamp::now() + SignedDuration::from_mins(20),
    );
    let timeout = Duration::from_secs(2);
    let amadeus = Amadeus::new(
        farewatch::upstream::http::build_client(),
        config(&server, timeout),
        Some(cache),
    );

    let started = tokio::time::Instant::now();
    let result = amadeus.cheapest(&lhr_jfk()).await;
    assert_eq!(result, Err(UpstreamError::Timeout(timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let amadeus = Amadeus::new(
        farewatch::upstream::http::build_client(),
        AmadeusConfig {
            base_url,
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            timeout: Duration::from_secs(5),
        },
        None,
    );

    let error = amadeus.cheapest(&lhr_jfk()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
}

#[tokio::test]
async fn replies_echoing_the_secret_or_the_token_are_redacted_in_errors() {
    let echo = format!("client_secret={CLIENT_SECRET} Authorization: Bearer {FIXTURE_TOKEN}");
    let rejected = search_error(
        400,
        format!(r#"{{"errors":[{{"code":477,"title":"INVALID FORMAT","detail":"{echo}"}}]}}"#),
    )
    .await;
    let html = search_error_with(
        ResponseTemplate::new(200).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;
    let proxy = search_error_with(
        ResponseTemplate::new(502).set_body_raw(format!("<pre>{echo}</pre>"), "text/html"),
    )
    .await;

    for error in [rejected, html, proxy] {
        let text = format!("{error} {error:?}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        assert!(!text.contains(FIXTURE_TOKEN), "{text}");
    }
}

// ----- configuration ---------------------------------------------------------------

#[tokio::test]
async fn debug_output_never_shows_the_secret_or_the_token() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_search(
        &server,
        FIXTURE_TOKEN,
        amadeus_json(200, fixture!("amadeus-flight-offers-LHR-JFK.json")),
        1,
    )
    .await;
    let config = config(&server, Duration::from_secs(10));
    let amadeus = Amadeus::new(
        farewatch::upstream::http::build_client(),
        config.clone(),
        None,
    );
    amadeus.cheapest(&lhr_jfk()).await.unwrap();

    for debug in [
        format!("{amadeus:?}"),
        format!("{amadeus:#?}"),
        format!("{config:?}"),
    ] {
        assert!(!debug.contains(CLIENT_SECRET), "{debug}");
        assert!(!debug.contains(FIXTURE_TOKEN), "{debug}");
        assert!(debug.contains(CLIENT_ID), "{debug}");
    }
}

#[test]
fn default_limits_follow_the_documented_rates() {
    let amadeus = |base_url: &str| {
        Amadeus::new(
            farewatch::upstream::http::build_client(),
            AmadeusConfig {
                base_url: base_url.to_owned(),
                client_id: CLIENT_ID.into(),
                client_secret: SecretString::from(CLIENT_SECRET),
                timeout: Duration::from_secs(12),
            },
            None,
        )
    };
    let test = amadeus(DEFAULT_BASE_URL).default_limits();
    assert_eq!(test.max_concurrency, 50);
    assert_eq!(test.rate_per_sec, 10.0);
    assert_eq!(test.timeout, Duration::from_secs(12));
    assert_eq!(
        amadeus(PRODUCTION_BASE_URL).default_limits().rate_per_sec,
        40.0
    );
    assert_eq!(
        amadeus("https://api.amadeus.com/")
            .default_limits()
            .rate_per_sec,
        40.0
    );
    assert_eq!(amadeus("http://127.0.0.1:9").name(), "amadeus");
}
