//! `farewatch daemon --fleet` processes on one PostgreSQL and one Redis,
//! against the Amadeus and Twilio fakes: the routes are shared out, each
//! lookup is asked once and each alert sent once across the fleet; then the
//! same with a daemon killed mid-cycle, and with Redis lost mid-cycle; a
//! batch longer than the lease keeps its claim; one daemon reads the sheet
//! for the fleet and an edit reaches every daemon, also after it dies;
//! PostgreSQL lost mid-cycle: nothing sent without its intent, and the
//! fleet finishes once it is back; an alert the channel failed is sent at
//! the next tick, not an interval later.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::amadeus_fake::{AmadeusFake, Reply};
use common::binary::{farewatch, write_sheet};
use common::db::{Backend, TestDb};
use common::redis_server::RedisServer;
use common::tcp_proxy::TcpProxy;
use common::twilio_fake::{Post, TwilioFake};
use common::*;
use farewatch::store::fleet::NodeRecord;
use farewatch::store::Store;

/// Upper bound on waiting for the processes. Never reached when things
/// work; it only turns a hang into a failure.
const WITHIN: Duration = Duration::from_secs(60);

/// The `i`th three-letter code from `QAA` on (never JFK).
fn code(i: usize) -> String {
    let letter = |n: usize| (b'A' + (n % 26) as u8) as char;
    format!("{}{}{}", letter(16 + i / 676), letter(i / 26), letter(i))
}

/// A fleet's surroundings: its database, its Redis and the fakes, with a
/// routes sheet of `routes` rows, each from its own origin and alerting
/// (the fare is GBP 312.46, every maximum 350).
struct Fleet {
    db: TestDb,
    redis: RedisServer,
    fake: AmadeusFake,
    twilio: TwilioFake,
    routes: usize,
}

impl Fleet {
    async fn new(routes: usize, reply: Reply) -> Self {
        let db = TestDb::new(Backend::Postgres).await;
        let rows: Vec<String> = (0..routes)
            .map(|i| {
                let origin = code(i);
                format!(
                    "{origin},JFK,{},350,GBP,+44791112{i:04},",
                    days_from_today(30)
                )
            })
            .collect();
        write_sheet(db.dir(), &rows);
        Self {
            db,
            redis: RedisServer::start(),
            fake: AmadeusFake::start(move |_| reply).await,
            twilio: TwilioFake::accepting().await,
            routes,
        }
    }

    /// A daemon of the fleet, claiming `batch` routes at a time.
    fn daemon(&self, batch: u32) -> tokio::process::Child {
        self.daemon_with(batch, &[("REDIS_URL", &self.redis.url())])
    }

    /// A daemon of the fleet with `env` added (no Redis unless it says so).
    fn daemon_with(&self, batch: u32, env: &[(&str, &str)]) -> tokio::process::Child {
        let mut cmd = farewatch(self.db.dir(), &self.fake.uri(), &self.twilio.uri());
        cmd.env("DATABASE_URL", self.db.url())
            .envs(env.iter().copied())
            .env("FAREWATCH_FLEET_BATCH", batch.to_string())
            .env("AMADEUS_TIMEOUT", "10s")
            .args(["daemon", "--fleet", "--interval", "1h", "--format", "json"])
            .arg("--no-progress")
            .stdout(Stdio::null());
        // FLEET_TEST_STDERR=1 shows the daemons' logs (RUST_LOG passed on).
        if let Some(filter) = std::env::var_os("RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.stderr(if std::env::var_os("FLEET_TEST_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        cmd.spawn().unwrap()
    }

    /// Waits until every alert is sent and every route is checked, held by
    /// none and counted by the daemon that checked it; the nodes then.
    async fn settled(&self, store: &Store) -> Vec<NodeRecord> {
        tokio::time::timeout(WITHIN, self.twilio.wait_for_posts(self.routes as u64))
            .await
            .expect("every alert is sent");
        tokio::time::timeout(WITHIN, async {
            loop {
                let now = jiff::Timestamp::now();
                let due = store.due_summary(now).await.unwrap();
                let nodes = store.fleet_nodes(now).await.unwrap();
                // Each daemon counts its batch just after completing it.
                let counted: u64 = nodes.iter().map(|n| n.done).sum();
                if due.routes == self.routes as u64
                    && due.leased == 0
                    && due.due == 0
                    && counted >= self.routes as u64
                {
                    return nodes;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the fleet finishes its cycle")
    }

    /// Adds `rows` alerting rows to the sheet (origins after those there).
    fn add_rows(&mut self, rows: usize) {
        let path = self.db.dir().join("routes.csv");
        let mut csv = std::fs::read_to_string(&path).unwrap();
        for i in self.routes..self.routes + rows {
            csv.push_str(&format!(
                "{},JFK,{},350,GBP,+44791112{i:04},\n",
                code(i),
                days_from_today(30)
            ));
        }
        // Written whole, then renamed: a reader never sees half a sheet.
        let fresh = self.db.dir().join("routes.csv.new");
        std::fs::write(&fresh, csv).unwrap();
        std::fs::rename(fresh, path).unwrap();
        self.routes += rows;
    }

    /// Each alert was sent exactly once.
    fn assert_alerted_once(&self) {
        let mut accepted = self.twilio.accepted();
        assert_eq!(accepted.len(), self.routes, "one SMS per alert due");
        accepted.sort();
        accepted.dedup();
        assert_eq!(accepted.len(), self.routes, "none twice");
    }
}

async fn stop(daemons: &mut [tokio::process::Child]) {
    for daemon in daemons {
        daemon.start_kill().unwrap();
        daemon.wait().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_share_the_routes_and_alert_once() {
    // Thousands of watches, with a little latency so the cycles overlap.
    let fleet = Fleet::new(2000, Reply::Hang(Duration::from_millis(5))).await;
    let mut daemons = [fleet.daemon(50), fleet.daemon(50), fleet.daemon(50)];
    let store = fleet.db.open().await;
    let nodes = fleet.settled(&store).await;
    stop(&mut daemons).await;
    assert_eq!(
        fleet.fake.searches(),
        2000,
        "each lookup asked once by the fleet"
    );
    fleet.assert_alerted_once();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let done: u64 = nodes.iter().map(|n| n.done).sum();
    assert_eq!(done, 2000, "each route done once: {nodes:?}");
    let working = nodes.iter().filter(|n| n.done > 0).count();
    assert!(working >= 2, "the work was shared: {nodes:?}");

    // `farewatch fleet` shows them.
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_farewatch"))
        .args(["fleet", "--database-url", fleet.db.url()])
        .env_clear()
        .env("REDIS_URL", fleet.redis.url())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("routes 2000: 0 due now, 0 held"),
        "{stdout}"
    );
    // Who reads the sheet, its copy, the shared limit (Amadeus, unpaced
    // here, counted by Redis all the same: each process that took a turn),
    // then one line per node.
    assert!(stdout.contains("\nlease sheet: "), "{stdout}");
    assert!(stdout.contains("\nsheet "), "{stdout}");
    // A daemon that found nothing left to claim never asked for a turn.
    assert!(
        stdout.contains(&format!("\nlimit amadeus: {working} processes, ")),
        "{stdout}"
    );
    let listed = stdout
        .lines()
        .skip_while(|l| !l.starts_with("NODE"))
        .filter(|l| l.contains(" daemon "));
    assert_eq!(listed.count(), 3, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_cycle_loses_nothing_and_its_routes_are_taken_over() {
    // Every search hangs until the first daemon is dead.
    let fleet = Fleet::new(12, Reply::Hang(Duration::from_secs(300))).await;
    let mut first = fleet.daemon(4);
    // Its first batch of 4 is in flight (hung) when it is killed.
    tokio::time::timeout(WITHIN, fleet.fake.wait_for_searches(4))
        .await
        .expect("the first batch is asked");
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert_eq!(fleet.fake.searches(), 4);
    let store = fleet.db.open().await;
    let held = store.due_summary(jiff::Timestamp::now()).await.unwrap();
    assert_eq!(held.leased, 4, "the dead daemon's batch is still leased");
    fleet.fake.set_plan(|_| Reply::Offers);

    // Two daemons take over: the dead one's routes at once (same machine),
    // not after its lease.
    let mut rest = [fleet.daemon(4), fleet.daemon(4)];
    let nodes = fleet.settled(&store).await;
    stop(&mut rest).await;
    // The 4 hung searches were asked again (their answers never came), the
    // other 8 once: nothing lost, nothing else repeated.
    assert_eq!(fleet.fake.searches(), 12 + 4);
    fleet.assert_alerted_once();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(nodes.iter().map(|n| n.done).sum::<u64>(), 12, "{nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_cycle_loses_nothing_and_sends_nothing_twice() {
    let mut fleet = Fleet::new(30, Reply::Hang(Duration::from_millis(100))).await;
    let mut daemons = [fleet.daemon(4), fleet.daemon(4), fleet.daemon(4)];
    // Redis goes away once the cycles are under way, and comes back.
    tokio::time::timeout(WITHIN, fleet.fake.wait_for_searches(4))
        .await
        .expect("the cycles start");
    fleet.redis.kill();
    tokio::time::timeout(WITHIN, fleet.twilio.wait_for_posts(12))
        .await
        .expect("the cycles go on without Redis");
    fleet.redis.restart();
    let store = fleet.db.open().await;
    fleet.settled(&store).await;
    stop(&mut daemons).await;
    // The routes were shared out in PostgreSQL, so even without Redis's
    // cache each lookup was asked once; the outbox sent each alert once.
    assert_eq!(fleet.fake.searches(), 30);
    fleet.assert_alerted_once();
}

/// The name a daemon's process holds its claims under (`HOST/PID/...`).
fn holder_of(nodes: &[NodeRecord], daemon: &tokio::process::Child) -> String {
    let pid = format!("/{}/", daemon.id().expect("running"));
    nodes
        .iter()
        .find(|n| n.holder.contains(&pid))
        .map(|n| n.holder.clone())
        .unwrap_or_else(|| panic!("no node of pid {pid} in {nodes:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_longer_than_the_lease_keeps_its_claim() {
    // Each search takes 5 s; claims last 2 s unrenewed. No Redis: nothing
    // but the claim keeps the second daemon from asking the same again.
    let fleet = Fleet::new(6, Reply::Hang(Duration::from_secs(5))).await;
    let lease = [("FAREWATCH_FLEET_LEASE", "2s")];
    let first = fleet.daemon_with(10, &lease);
    tokio::time::timeout(WITHIN, fleet.fake.wait_for_searches(6))
        .await
        .expect("the first daemon claims and asks all six");
    // The second looks for due work every 2 s while the first waits.
    let second = fleet.daemon_with(10, &lease);
    let store = fleet.db.open().await;
    let nodes = fleet.settled(&store).await;
    stop(&mut [first, second]).await;
    assert_eq!(fleet.fake.searches(), 6, "the renewed claim was not taken");
    fleet.assert_alerted_once();
    let done: Vec<u64> = nodes.iter().map(|n| n.done).collect();
    assert!(
        done.contains(&6) && done.iter().sum::<u64>() == 6,
        "{nodes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_reads_the_sheet_for_the_fleet_and_edits_reach_every_daemon() {
    let mut fleet = Fleet::new(4, Reply::Offers).await;
    // Ticks of a second, so edits are seen quickly.
    let lease = [("FAREWATCH_FLEET_LEASE", "1s")];
    let reader = fleet.daemon_with(10, &lease);
    let store = fleet.db.open().await;
    fleet.settled(&store).await;
    let other = fleet.daemon_with(10, &lease);
    let stored = store
        .stored_sheet()
        .await
        .unwrap()
        .expect("the sheet is stored");
    assert!(stored.source.ends_with("routes.csv"), "{}", stored.source);
    assert_eq!(
        stored.body,
        std::fs::read(fleet.db.dir().join("routes.csv")).unwrap()
    );

    // An edit: two new alerting rows, each checked once by the fleet.
    fleet.add_rows(2);
    fleet.settled(&store).await;
    assert_eq!(fleet.fake.searches(), 6);
    fleet.assert_alerted_once();
    let nodes = store.fleet_nodes(jiff::Timestamp::now()).await.unwrap();
    let reader_name = holder_of(&nodes, &reader);
    let other_name = holder_of(&nodes, &other);
    let leases = store.fleet_leases().await.unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(
        leases[0].holder, reader_name,
        "the first daemon reads for the fleet"
    );
    let stored = store.stored_sheet().await.unwrap().unwrap();
    assert_eq!(stored.synced_by, reader_name);
    assert_eq!(
        stored.body,
        std::fs::read(fleet.db.dir().join("routes.csv")).unwrap()
    );

    // The reader dies: the other daemon reads the sheet from then on.
    let mut reader = reader;
    reader.start_kill().unwrap();
    reader.wait().await.unwrap();
    fleet.add_rows(1);
    fleet.settled(&store).await;
    assert_eq!(fleet.fake.searches(), 7);
    fleet.assert_alerted_once();
    let stored = store.stored_sheet().await.unwrap().unwrap();
    assert_eq!(
        stored.synced_by, other_name,
        "the survivor took the sheet's lease"
    );
    stop(&mut [other]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_mid_cycle_sends_nothing_without_its_intent_and_recovers() {
    let fleet = Fleet::new(30, Reply::Hang(Duration::from_millis(100))).await;
    // The daemons reach PostgreSQL through a proxy the test can cut.
    let target = fleet.db.url().split_once('@').unwrap().1;
    let target = target.split_once('/').unwrap().0.to_owned();
    let proxy = TcpProxy::start(target).await;
    let through = proxy.url_through(fleet.db.url());
    let env = [
        ("DATABASE_URL", through.as_str()),
        ("REDIS_URL", &fleet.redis.url()),
        ("FAREWATCH_FLEET_LEASE", "2s"),
    ];
    let mut daemons = [fleet.daemon_with(4, &env), fleet.daemon_with(4, &env)];
    tokio::time::timeout(WITHIN, fleet.twilio.wait_for_posts(6))
        .await
        .expect("the cycles start");
    proxy.cut();
    // The daemons find the database gone (they try to reconnect), then it
    // comes back.
    tokio::time::timeout(WITHIN, async {
        while proxy.refused() < 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the daemons try to reach the database");
    let sent_while_cut = fleet.twilio.posts();
    proxy.restore();
    let store = fleet.db.open().await;
    fleet.settled(&store).await;
    fleet.assert_alerted_once();
    // A send the outage cut short (Twilio took it, its record was lost) is
    // settled by the next tick: nothing stays pending.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(fleet.db.url())
        .await
        .unwrap();
    tokio::time::timeout(WITHIN, async {
        loop {
            let (pending,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM outbox WHERE status = 'pending'")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            if pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every alert settled");
    // Every SMS Twilio accepted has its intent, recorded sent, in PostgreSQL.
    let sent: Vec<(String, String)> = sqlx::query_as(
        "SELECT recipient, body FROM outbox WHERE status = 'sent' ORDER BY recipient",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut accepted = fleet.twilio.accepted();
    accepted.sort();
    stop(&mut daemons).await;
    assert_eq!(sent, accepted, "an intent for every SMS, and the reverse");
    assert!(
        sent_while_cut < 30,
        "the outage came mid-cycle: {sent_while_cut} sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_the_channel_could_not_take_is_sent_at_the_next_tick() {
    // Twilio fails every send (500, nothing accepted) until the test lets
    // it through: each alert is left pending, unsettled.
    let fleet = Fleet::new(4, Reply::Hang(Duration::from_millis(1))).await;
    fleet.twilio.set_plan(|_| Post::ServerError);
    let env = [
        ("REDIS_URL", fleet.redis.url()),
        ("FAREWATCH_FLEET_LEASE", "1s".into()),
        ("TWILIO_SETTLE_DELAY", "10ms".into()),
        ("TWILIO_SETTLE_BOUND", "50ms".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut daemons = [fleet.daemon_with(4, &env)];
    let store = fleet.db.open().await;
    // The batch ends with its alerts tried and none taken.
    tokio::time::timeout(WITHIN, async {
        loop {
            let nodes = store.fleet_nodes(jiff::Timestamp::now()).await.unwrap();
            if nodes.iter().map(|n| n.done).sum::<u64>() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the first batch ends");
    assert!(fleet.twilio.posts() >= 4, "every alert was tried");
    assert!(fleet.twilio.accepted().is_empty());
    fleet.twilio.set_plan(|_| Post::Accept);
    // The interval is an hour: only a retry at the next tick sends them.
    tokio::time::timeout(WITHIN, async {
        while fleet.twilio.accepted().len() < fleet.routes {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every alert is sent within the hour's interval");
    fleet.settled(&store).await;
    stop(&mut daemons).await;
    fleet.assert_alerted_once();
    assert_eq!(
        fleet.fake.searches(),
        4,
        "the retry found the fares in the quote cache"
    );
}
