//! The quote cache: the in-process backend under tokio's paused clock, and
//! the Redis backend against a real redis-server.
//!
//! The Redis tests need a server: `REDIS_URL`, default `redis://127.0.0.1:6379/`.
//! Without one they fail (CI starts Redis; a silent pass would hide a broken
//! cache). Each test writes under its own key prefix and deletes only its own
//! keys, so tests can share a server and run in parallel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use farewatch::cache::{CacheError, CachedAnswer, QuoteCache, DEFAULT_QUOTE_TTL};
use farewatch::domain::{Currency, Iata, LookupKey, Money, Quote};
use jiff::civil::date;
use jiff::Timestamp;

fn lookup(origin: &str, destination: &str, ret: Option<jiff::civil::Date>) -> LookupKey {
    LookupKey {
        origin: Iata::parse(origin).unwrap(),
        destination: Iata::parse(destination).unwrap(),
        depart: date(2027, 3, 1),
        return_date: ret,
        adults: 2,
        currency: Currency::EUR,
        max_stops: None,
    }
}

fn quote(minor: i64) -> Quote {
    Quote {
        price: Money::from_minor(minor, Currency::EUR),
        provider: "amadeus".to_owned(),
        fetched_at: Timestamp::new(1_800_000_000, 123_456_789).unwrap(),
        cached: false,
        found_at: None,
        link: Some("https://example.test/offer/1".to_owned()),
        // Round-trips through the cache with everything a provider may add.
        insights: Some(farewatch::domain::PriceInsights {
            lowest: Some(Money::from_minor(minor - 100, Currency::EUR)),
            level: Some(farewatch::domain::PriceLevel::Low),
            typical_range: Some((
                Money::from_minor(minor, Currency::EUR),
                Money::from_minor(minor + 500, Currency::EUR),
            )),
            history: vec![(
                Timestamp::new(1_799_000_000, 0).unwrap(),
                Money::from_minor(minor + 1, Currency::EUR),
            )],
        }),
        itinerary: Some(farewatch::domain::Itinerary {
            airline: Some("Aer Lingus".to_owned()),
            stops: Some(1),
            duration_minutes: Some(705),
        }),
    }
}

// ---------------------------------------------------------------- keys

#[test]
fn key_layout_is_documented_and_stable() {
    let cache = QuoteCache::memory(DEFAULT_QUOTE_TTL);
    assert_eq!(
        cache.key_for("amadeus", &lookup("lhr", "JFK", Some(date(2027, 3, 8)))),
        "farewatch:quote:v1:amadeus:LHR:JFK:2027-03-01:2027-03-08:2:EUR"
    );
    let cache = cache.with_prefix("staging");
    assert_eq!(
        cache.key_for("demo", &lookup("LHR", "JFK", None)),
        "staging:quote:v1:demo:LHR:JFK:2027-03-01:ow:2:EUR"
    );
    // A stop limit is part of the search, so of the key; without one the key
    // is what it was before limits existed.
    let mut direct = lookup("LHR", "JFK", None);
    direct.max_stops = Some(0);
    assert_eq!(
        cache.key_for("demo", &direct),
        "staging:quote:v1:demo:LHR:JFK:2027-03-01:ow:2:EUR:s0"
    );
    direct.max_stops = Some(2);
    assert_eq!(
        cache.key_for("demo", &direct),
        "staging:quote:v1:demo:LHR:JFK:2027-03-01:ow:2:EUR:s2"
    );
}

#[tokio::test(start_paused = true)]
async fn lookups_differing_only_in_max_stops_do_not_share_an_answer() {
    let cache = QuoteCache::memory(DEFAULT_QUOTE_TTL);
    let any = lookup("LHR", "JFK", None);
    let mut direct = any;
    direct.max_stops = Some(0);
    cache.put("amadeus", &any, &Some(quote(312_46))).await;
    cache.put("amadeus", &direct, &None).await;
    assert_eq!(
        cache.get_many("amadeus", &[any, direct]).await,
        vec![Some(Some(quote(312_46))), Some(None)]
    );
}

// ---------------------------------------------------------------- memory

#[tokio::test(start_paused = true)]
async fn memory_hit_miss_and_no_offers() {
    let cache = QuoteCache::memory(DEFAULT_QUOTE_TTL);
    assert_eq!(cache.kind(), "memory");
    let (a, b, c) = (
        lookup("LHR", "JFK", None),
        lookup("LHR", "BOS", None),
        lookup("LHR", "SFO", None),
    );
    cache.put("amadeus", &a, &Some(quote(289_00))).await;
    cache.put("amadeus", &b, &None).await;
    assert_eq!(
        cache.get_many("amadeus", &[a, b, c]).await,
        vec![Some(Some(quote(289_00))), Some(None), None]
    );
    // Another provider's answers are separate.
    assert_eq!(cache.get_many("demo", &[a]).await, vec![None]);
    // Clones share entries.
    assert_eq!(
        cache.clone().get_many("amadeus", &[b]).await,
        vec![Some(None)]
    );
    assert!(cache.get_many("amadeus", &[]).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn memory_entries_expire_after_the_ttl() {
    let ttl = Duration::from_secs(300);
    let cache = QuoteCache::memory(ttl);
    let key = lookup("LHR", "JFK", None);
    cache.put("amadeus", &key, &Some(quote(289_00))).await;

    tokio::time::advance(ttl - Duration::from_millis(1)).await;
    assert_eq!(
        cache.get_many("amadeus", &[key]).await,
        vec![Some(Some(quote(289_00)))]
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(cache.get_many("amadeus", &[key]).await, vec![None]);

    // A fresh put starts a fresh TTL.
    cache.put("amadeus", &key, &None).await;
    tokio::time::advance(Duration::from_secs(299)).await;
    assert_eq!(cache.get_many("amadeus", &[key]).await, vec![Some(None)]);
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_caches_nothing() {
    let cache = QuoteCache::memory(Duration::ZERO);
    assert_eq!(cache.kind(), "off");
    let key = lookup("LHR", "JFK", None);
    cache.put("amadeus", &key, &Some(quote(289_00))).await;
    cache.put("amadeus", &key, &None).await;
    assert_eq!(
        cache.get_many("amadeus", &[key, key]).await,
        vec![None, None]
    );
}

// ---------------------------------------------------------------- redis

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A prefix no other test (or run) uses.
fn unique_prefix(test: &str) -> String {
    let nanos = Timestamp::now().as_nanosecond();
    format!("fwtest-{test}-{}-{nanos}", std::process::id())
}

async fn redis_cache(test: &str, ttl: Duration) -> QuoteCache {
    let url = redis_url();
    match QuoteCache::redis(&url, ttl).await {
        Ok(cache) => cache.with_prefix(unique_prefix(test)),
        Err(e) => panic!(
            "the Redis tests need a running redis-server (set REDIS_URL, default \
             redis://127.0.0.1:6379/): {e}"
        ),
    }
}

async fn raw_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the test Redis")
}

async fn raw<T: redis::FromRedisValue>(cmd: &mut redis::Cmd) -> T {
    cmd.query_async(&mut raw_conn().await).await.unwrap()
}

#[tokio::test]
async fn redis_stores_json_under_the_documented_key_with_the_ttl() {
    let cache = redis_cache("layout", DEFAULT_QUOTE_TTL).await;
    assert_eq!(cache.kind(), "redis");
    let round = lookup("LHR", "JFK", Some(date(2027, 3, 8)));
    let one_way = lookup("LHR", "JFK", None);
    cache.put("amadeus", &round, &Some(quote(289_00))).await;
    cache.put("amadeus", &one_way, &None).await;

    let name = cache.key_for("amadeus", &round);
    assert!(
        name.ends_with(":quote:v1:amadeus:LHR:JFK:2027-03-01:2027-03-08:2:EUR"),
        "{name}"
    );
    let value: String = raw(redis::cmd("GET").arg(&name)).await;
    assert_eq!(value, serde_json::to_string(&Some(quote(289_00))).unwrap());
    let decoded: CachedAnswer = serde_json::from_str(&value).unwrap();
    assert_eq!(decoded, Some(quote(289_00)));
    let ttl: i64 = raw(redis::cmd("TTL").arg(&name)).await;
    assert!((298..=300).contains(&ttl), "TTL is {ttl}");

    let none_name = cache.key_for("amadeus", &one_way);
    assert!(none_name.contains(":ow:"), "{none_name}");
    let value: String = raw(redis::cmd("GET").arg(&none_name)).await;
    assert_eq!(value, "null");
    let ttl: i64 = raw(redis::cmd("TTL").arg(&none_name)).await;
    assert!((298..=300).contains(&ttl), "TTL is {ttl}");

    let _: () = raw(redis::cmd("DEL").arg(&name).arg(&none_name)).await;
}

#[tokio::test]
async fn redis_get_many_mixes_hits_misses_and_bad_values() {
    let cache = redis_cache("mget", Duration::from_secs(60)).await;
    let keys = [
        lookup("LHR", "JFK", None),
        lookup("LHR", "BOS", None),
        lookup("LHR", "SFO", None),
        lookup("LHR", "LAX", None),
        lookup("LHR", "MIA", None),
    ];
    cache.put("amadeus", &keys[0], &Some(quote(100_00))).await;
    cache.put("amadeus", &keys[2], &None).await;
    cache.put("amadeus", &keys[4], &Some(quote(500_00))).await;
    // Something else wrote junk under one of our keys: a miss, not an error.
    let junk = cache.key_for("amadeus", &keys[3]);
    let _: () = raw(redis::cmd("SET")
        .arg(&junk)
        .arg("{not json")
        .arg("EX")
        .arg(60))
    .await;

    assert_eq!(
        cache.get_many("amadeus", &keys).await,
        vec![
            Some(Some(quote(100_00))),
            None,
            Some(None),
            None,
            Some(Some(quote(500_00))),
        ]
    );
    assert!(cache.get_many("amadeus", &[]).await.is_empty());

    let names: Vec<String> = keys.iter().map(|k| cache.key_for("amadeus", k)).collect();
    let _: () = raw(redis::cmd("DEL").arg(&names)).await;
}

#[tokio::test]
async fn redis_deleted_keys_are_misses() {
    let cache = redis_cache("flush", Duration::from_secs(60)).await;
    let key = lookup("LHR", "JFK", None);
    cache.put("amadeus", &key, &Some(quote(289_00))).await;
    assert_eq!(
        cache.get_many("amadeus", &[key]).await,
        vec![Some(Some(quote(289_00)))]
    );
    // Like a FLUSHDB, but only for this test's keys (the server is shared).
    let name = cache.key_for("amadeus", &key);
    let deleted: i64 = raw(redis::cmd("DEL").arg(&name)).await;
    assert_eq!(deleted, 1);
    assert_eq!(cache.get_many("amadeus", &[key]).await, vec![None]);
    // And the cache keeps working.
    cache.put("amadeus", &key, &None).await;
    assert_eq!(cache.get_many("amadeus", &[key]).await, vec![Some(None)]);
    let _: () = raw(redis::cmd("DEL").arg(&name)).await;
}

#[tokio::test]
async fn unreachable_redis_fails_fast_without_the_password() {
    let started = std::time::Instant::now();
    let err = QuoteCache::redis("redis://:hunter2-pw@127.0.0.1:1/", DEFAULT_QUOTE_TTL)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(matches!(err, CacheError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
    assert!(msg.contains("redis://:***@127.0.0.1:1/"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_zero_ttl_never_writes_to_redis() {
    // Not even a connection: a Redis that is not there is no error.
    let off = QuoteCache::redis("redis://127.0.0.1:1/", Duration::ZERO)
        .await
        .expect("a zero TTL does not connect");
    assert_eq!(off.kind(), "off");

    let prefix = unique_prefix("zero-ttl");
    let cache = QuoteCache::redis(&redis_url(), Duration::ZERO)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    let key = lookup("LHR", "JFK", None);
    cache.put("amadeus", &key, &Some(quote(289_00))).await;
    assert_eq!(cache.get_many("amadeus", &[key]).await, vec![None]);
    let keys: Vec<String> = raw(redis::cmd("KEYS").arg(format!("{prefix}:*"))).await;
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn a_malformed_url_is_an_error_without_the_password() {
    for url in [
        "redis//:hunter2-pw@127.0.0.1:6379",
        "redis://:hunter2-pw@127.0.0.1:port/0",
        "redis://:hunter2-pw@[::1/",
    ] {
        let err = QuoteCache::redis(url, DEFAULT_QUOTE_TTL).await.unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

#[tokio::test]
async fn an_invalid_url_is_an_error_without_the_password() {
    let err = QuoteCache::redis("http://:hunter2-pw@cache.example/", DEFAULT_QUOTE_TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A Redis ACL user for one test, deleted on drop: lets a test use a
/// password, and kill or restrict only its own connections.
struct AclUser {
    name: String,
    password: String,
}

impl AclUser {
    async fn create(test: &str) -> Self {
        let user = Self {
            name: unique_prefix(test),
            password: format!("pw-{}", Timestamp::now().as_nanosecond()),
        };
        let _: () = raw(redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&user.name)
            .arg("on")
            .arg(format!(">{}", user.password))
            .arg("~*")
            .arg("+@all"))
        .await;
        user
    }

    fn url(&self, password: &str) -> String {
        let mut url = url::Url::parse(&redis_url()).unwrap();
        url.set_username(&self.name).unwrap();
        url.set_password(Some(password)).unwrap();
        url.to_string()
    }
}

impl Drop for AclUser {
    fn drop(&mut self) {
        if let Ok(mut conn) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) {
            let _: redis::RedisResult<()> = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&self.name)
                .query(&mut conn);
        }
    }
}

#[tokio::test]
async fn a_password_never_shows_in_debug_or_errors() {
    let user = AclUser::create("acl").await;
    let cache = QuoteCache::redis(&user.url(&user.password), DEFAULT_QUOTE_TTL)
        .await
        .expect("connect with an ACL user");
    let debug = format!("{cache:?}");
    assert!(!debug.contains(&user.password), "{debug}");
    assert!(debug.contains(&format!("{}:***@", user.name)), "{debug}");
    assert!(debug.contains("redis"), "{debug}");

    let wrong = "wrong-pw-4f1d";
    let err = QuoteCache::redis(&user.url(wrong), DEFAULT_QUOTE_TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        !msg.contains(wrong) && !msg.contains(&user.password),
        "{msg}"
    );
    assert!(!format!("{err:?}").contains(wrong));
}

#[tokio::test]
async fn a_dropped_connection_reconnects_by_itself() {
    let user = AclUser::create("reconnect").await;
    let cache = QuoteCache::redis(&user.url(&user.password), Duration::from_secs(60))
        .await
        .unwrap()
        .with_prefix(unique_prefix("reconnect"));
    let key = lookup("LHR", "JFK", None);
    cache.put("amadeus", &key, &Some(quote(289_00))).await;

    let killed: i64 = raw(redis::cmd("CLIENT").arg("KILL").arg("USER").arg(&user.name)).await;
    assert!(killed >= 1, "no connection of {} to kill", user.name);

    // The first call after the kill may miss; the manager reconnects on its own.
    let mut attempts = 0;
    let answer = loop {
        attempts += 1;
        let got = cache.get_many("amadeus", &[key]).await;
        if got[0].is_some() || attempts == 5 {
            break got;
        }
    };
    assert_eq!(
        answer,
        vec![Some(Some(quote(289_00)))],
        "after {attempts} attempts"
    );
    let _: () = raw(redis::cmd("DEL").arg(cache.key_for("amadeus", &key))).await;
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn run_time_failures_are_misses_and_warn_once() {
    let user = AclUser::create("failing").await;
    let cache = QuoteCache::redis(&user.url(&user.password), Duration::from_secs(60))
        .await
        .unwrap()
        .with_prefix(unique_prefix("failing"));
    let key = lookup("LHR", "JFK", None);
    cache.put("amadeus", &key, &Some(quote(289_00))).await;
    // From now on every command is refused (NOPERM), without dropping the connection.
    let _: () = raw(redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user.name)
        .arg("-@all"))
    .await;

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded, so a thread-local default sees every event.
    let _guard = tracing::subscriber::set_default(subscriber);

    for _ in 0..25 {
        assert_eq!(cache.get_many("amadeus", &[key]).await, vec![None]);
        cache.put("amadeus", &key, &None).await;
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = text.lines().filter(|l| l.contains("WARN")).count();
    assert_eq!(
        warnings, 1,
        "expected one rate-limited warning, got:\n{text}"
    );
    assert!(text.contains("Redis quote cache"), "{text}");
    assert!(!text.contains(&user.password), "{text}");

    let _: () = raw(redis::cmd("DEL").arg(cache.key_for("amadeus", &key))).await;
}

// ---------------------------------------------------------------- single flight

/// Two caches on one Redis with one prefix: two processes of one fleet.
async fn fleet_pair(test: &str) -> (QuoteCache, QuoteCache) {
    let prefix = unique_prefix(test);
    let a = redis_cache(test, DEFAULT_QUOTE_TTL)
        .await
        .with_prefix(prefix.clone());
    let b = redis_cache(test, DEFAULT_QUOTE_TTL)
        .await
        .with_prefix(prefix);
    (a, b)
}

#[tokio::test]
async fn one_process_leads_a_flight_and_the_other_lands_on_its_answer() {
    use farewatch::cache::Flight;
    let (a, b) = fleet_pair("flight").await;
    let key = lookup("LHR", "JFK", None);
    let Flight::Lead(Some(claim)) = a.flight("fares", &key).await else {
        panic!("the first asker leads, with a claim in Redis");
    };
    let claim_key = format!("{}:flight", a.key_for("fares", &key));
    let ttl_ms: i64 = raw(redis::cmd("PTTL").arg(&claim_key)).await;
    assert!(ttl_ms > 25_000 && ttl_ms <= 30_000, "{ttl_ms}");
    // b waits for a's answer instead of asking the providers itself.
    let follower = tokio::spawn({
        let b = b.clone();
        async move { b.flight("fares", &key).await }
    });
    a.put("fares", &key, &Some(quote(31_246))).await;
    Flight::Lead(Some(claim)).land().await;
    match follower.await.unwrap() {
        Flight::Landed(answer) => assert_eq!(*answer, Some(quote(31_246))),
        other => panic!("b should have landed on a's answer: {other:?}"),
    }
    let exists: bool = raw(redis::cmd("EXISTS").arg(&claim_key)).await;
    assert!(!exists, "landing releases the claim");
}

#[tokio::test]
async fn a_failed_flight_hands_the_lookup_to_a_waiting_process() {
    use farewatch::cache::Flight;
    let (a, b) = fleet_pair("flight-failed").await;
    let key = lookup("LGW", "EWR", None);
    let led = a.flight("fares", &key).await;
    assert!(matches!(led, Flight::Lead(Some(_))));
    let follower = tokio::spawn({
        let b = b.clone();
        async move { b.flight("fares", &key).await }
    });
    // a's lookup failed: nothing cached, the claim released.
    led.land().await;
    assert!(
        matches!(follower.await.unwrap(), Flight::Lead(Some(_))),
        "b takes the lookup over at once"
    );
}

#[tokio::test]
async fn a_flight_that_landed_after_a_miss_is_not_flown_again() {
    use farewatch::cache::Flight;
    let (a, b) = fleet_pair("flight-landed").await;
    let key = lookup("STN", "BOS", None);
    // b missed the cache; before it claims the flight, a leads it, caches
    // its answer and lands (the claim is gone by the time b asks).
    let led = a.flight("fares", &key).await;
    a.put("fares", &key, &Some(quote(29_900))).await;
    led.land().await;
    match b.flight("fares", &key).await {
        Flight::Landed(answer) => assert_eq!(*answer, Some(quote(29_900))),
        other => panic!("b must take a's answer, not ask again: {other:?}"),
    }
    let claim_key = format!("{}:flight", b.key_for("fares", &key));
    let exists: bool = raw(redis::cmd("EXISTS").arg(&claim_key)).await;
    assert!(!exists, "b's claim was released");
}

#[tokio::test(start_paused = true)]
async fn without_redis_every_flight_is_led() {
    use farewatch::cache::Flight;
    let key = lookup("LHR", "JFK", None);
    for cache in [QuoteCache::memory(DEFAULT_QUOTE_TTL), QuoteCache::off()] {
        assert!(matches!(
            cache.flight("fares", &key).await,
            Flight::Lead(None)
        ));
    }
}
