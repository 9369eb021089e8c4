//! The search-job queue in the store, on SQLite and PostgreSQL: claims with
//! leases, the fenced commit (a taken-over claim commits nothing),
//! progress accounting, completion, cancel, interrupt/resume and paging.

mod common;

use farewatch::domain::{Currency, Money};
use farewatch::search::{self, SearchRequest, SearchSpec};
use farewatch::store::jobs::{
    ChunkCommit, ClaimedChunk, JobResult, JobState, JobTransition, NewJob, ResultOrder, LEASE,
};
use farewatch::store::Store;
use jiff::{SignedDuration, Timestamp};

fn request() -> SearchRequest {
    let spec = SearchSpec {
        from: vec!["LHR".into(), "LGW".into()],
        to: vec!["JFK".into()],
        depart: "2027-03-01..2027-03-05".into(),
        nights: Some("5..6".into()),
        currency: Some("EUR".into()),
        ..SearchSpec::default()
    };
    SearchRequest::parse(&spec, "2027-01-01".parse().unwrap(), Currency::EUR).unwrap()
}

async fn new_job(store: &Store, state: JobState) -> (String, SearchRequest) {
    let request = request();
    let id = search::new_job_id();
    let job = NewJob {
        id: id.clone(),
        owner_id: None,
        spec: serde_json::to_string(&request.to_spec()).unwrap(),
        watch: false,
        state,
        total: request.total(),
        chunks: search::chunks(&request),
    };
    store.create_job(&job, Timestamp::now()).await.unwrap();
    (id, request)
}

/// A result per combination of `chunk`: price 100 + index (an error for
/// every seventh, no fare for every fifth).
fn results_of(request: &SearchRequest, chunk: &ClaimedChunk) -> Vec<JobResult> {
    request
        .combinations(chunk.first..chunk.end)
        .map(|c| {
            let failed = c.index % 7 == 3;
            let no_fare = c.index % 5 == 4;
            JobResult {
                combo: c.index,
                origin: c.key.origin.as_str().into(),
                destination: c.key.destination.as_str().into(),
                depart: c.key.depart,
                return_date: c.key.return_date,
                price: (!failed && !no_fare)
                    .then(|| Money::from_minor(100_00 + c.index as i64 * 100, Currency::EUR)),
                airline: Some("Test Air".into()),
                stops: Some(1),
                duration_minutes: Some(450),
                source: Some("demo".into()),
                verdict: Some("unknown".into()),
                link: None,
                error: failed.then(|| "amadeus: timed out".to_owned()),
                fetched_at: Timestamp::now(),
            }
        })
        .collect()
}

on_both_backends! {
    /// Claims never overlap; each commit counts its combinations once; the
    /// last chunk completes the job; results page by price and by date.
    async fn a_job_is_claimed_committed_and_completed(db: TestDb) {
        let store = db.open().await;
        let (id, request) = new_job(&store, JobState::Pending).await;
        let total = request.total();
        assert_eq!(total, 2 * 5 * 2);
        let now = Timestamp::now();
        let first = store.claim_chunks("a", None, &[], 2, now).await.unwrap();
        let second = store.claim_chunks("b", None, &[], 100, now).await.unwrap();
        assert_eq!(first.len(), 2);
        let n_chunks = search::chunks(&request).len();
        assert_eq!(second.len(), n_chunks - 2, "b gets the rest, none of a's");
        assert!(second.iter().all(|c| !first.iter().any(|f| f.chunk == c.chunk)));
        let job = store.job(&id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Running);
        assert!(job.started_at.is_some());
        assert!(store.claim_chunks("c", None, &[], 10, now).await.unwrap().is_empty());

        let mut done = 0;
        let mut expected = (0u64, 0u64);
        for chunk in first.iter().chain(&second) {
            let results = results_of(&request, chunk);
            done += results.len() as u64;
            expected.0 += results.iter().filter(|r| r.price.is_some()).count() as u64;
            expected.1 += results.iter().filter(|r| r.error.is_some()).count() as u64;
            let committed = store.commit_chunk(chunk, &results, Timestamp::now()).await.unwrap();
            assert_eq!(
                committed,
                ChunkCommit::Committed { done, completed: done == total },
            );
            // A second commit of the same claim is fenced off.
            assert_eq!(
                store.commit_chunk(chunk, &results, Timestamp::now()).await.unwrap(),
                ChunkCommit::Lost
            );
        }
        let job = store.job(&id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Completed);
        assert_eq!((job.done, job.found, job.failed), (total, expected.0, expected.1));
        assert_eq!(job.last_error.as_deref(), Some("amadeus: timed out"));
        assert!(job.finished_at.is_some() && job.checkpoint_at.is_some());

        // Paging by price: cheapest first, then those without a fare.
        let mut all = Vec::new();
        for page in 0..4 {
            let rows = store.job_results(&id, ResultOrder::Price, page * 6, 6).await.unwrap();
            assert!(rows.len() <= 6);
            all.extend(rows);
        }
        assert_eq!(all.len() as u64, total);
        let priced: Vec<i64> = all.iter().filter_map(|r| r.price.map(|p| p.minor)).collect();
        assert_eq!(priced.len() as u64, expected.0);
        assert!(priced.windows(2).all(|w| w[0] <= w[1]), "{priced:?}");
        assert!(all[priced.len()..].iter().all(|r| r.price.is_none()));
        let mut combos: Vec<u64> = all.iter().map(|r| r.combo).collect();
        combos.sort_unstable();
        combos.dedup();
        assert_eq!(combos.len() as u64, total, "each combination once");
        let first_result = &all[0];
        assert_eq!(first_result.airline.as_deref(), Some("Test Air"));
        assert_eq!((first_result.stops, first_result.duration_minutes), (Some(1), Some(450)));

        // By date: departure, then return.
        let by_date = store.job_results(&id, ResultOrder::Date, 0, 100).await.unwrap();
        let dates: Vec<_> = by_date.iter().map(|r| (r.depart, r.return_date)).collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(by_date.len() as u64, total);
        assert!(store.job_results(&id, ResultOrder::Date, 100, 10).await.unwrap().is_empty());
    }
}

on_both_backends! {
    /// A claim whose lease ran out is taken over with a new token; the old
    /// holder's commit is refused and the combinations are stored once.
    async fn a_lapsed_lease_is_taken_over_and_the_old_holder_fenced_off(db: TestDb) {
        let store = db.open().await;
        let (id, request) = new_job(&store, JobState::Pending).await;
        let t0 = Timestamp::now();
        let old = store.claim_chunks("dead", Some(&id), &[], 1, t0).await.unwrap().remove(0);
        // Within the lease nobody else gets it; a heartbeat extends it.
        let within = t0 + SignedDuration::from_secs(20);
        let others = store.claim_chunks("live", Some(&id), &[], 100, within).await.unwrap();
        assert!(others.iter().all(|c| c.chunk != old.chunk));
        assert_eq!(store.extend_leases("dead", within).await.unwrap(), 1);
        let after_first_lease = t0 + LEASE + SignedDuration::from_secs(1);
        assert!(store
            .claim_chunks("live", Some(&id), &[], 100, after_first_lease)
            .await
            .unwrap()
            .is_empty(), "the heartbeat kept it");
        // No heartbeat since: gone after the extended lease.
        let lapsed = within + LEASE + SignedDuration::from_secs(1);
        // (live's own claims, never extended, lapsed too and are taken again.)
        let taken = store.claim_chunks("live", Some(&id), &[], 100, lapsed).await.unwrap();
        assert_eq!(taken.len(), others.len() + 1);
        let taken: Vec<ClaimedChunk> = taken.into_iter().filter(|c| c.chunk == old.chunk).collect();
        assert_eq!(taken.len(), 1);
        assert_ne!(taken[0].lease_token, old.lease_token);

        assert_eq!(
            store.commit_chunk(&old, &results_of(&request, &old), lapsed).await.unwrap(),
            ChunkCommit::Lost
        );
        let n = results_of(&request, &taken[0]).len() as u64;
        assert_eq!(
            store.commit_chunk(&taken[0], &results_of(&request, &taken[0]), lapsed).await.unwrap(),
            ChunkCommit::Committed { done: n, completed: false }
        );
        assert_eq!(store.job(&id).await.unwrap().unwrap().done, n);

        // A holder named dead (its process is gone) is taken over at once.
        let (id, _) = new_job(&store, JobState::Pending).await;
        let held = store.claim_chunks("crashed", Some(&id), &[], 1, lapsed).await.unwrap();
        assert_eq!(held.len(), 1);
        let holders = store.lease_holders().await.unwrap();
        assert!(holders.contains(&"crashed".to_owned()), "{holders:?}");
        let rescued = store
            .claim_chunks("live", Some(&id), &["crashed".to_owned()], 1, lapsed)
            .await
            .unwrap();
        assert_eq!(rescued.len(), 1);
        assert_eq!(rescued[0].chunk, held[0].chunk);
    }
}

on_both_backends! {
    /// Cancel stops claims and fences off commits in flight; interrupt
    /// gives claims back and waits for a resume, which continues where it
    /// stopped.
    async fn cancel_interrupt_and_resume(db: TestDb) {
        let store = db.open().await;
        let now = Timestamp::now();

        let (cancelled, request) = new_job(&store, JobState::Running).await;
        let held = store.claim_chunks("w", Some(&cancelled), &[], 1, now).await.unwrap().remove(0);
        assert_eq!(
            store.transition_job(&cancelled, &JobTransition::Cancel, now).await.unwrap(),
            Some(JobState::Cancelled)
        );
        assert_eq!(
            store.commit_chunk(&held, &results_of(&request, &held), now).await.unwrap(),
            ChunkCommit::Lost
        );
        assert!(store.claim_chunks("w", None, &[], 10, now).await.unwrap().is_empty());
        let job = store.job(&cancelled).await.unwrap().unwrap();
        assert_eq!((job.state, job.done), (JobState::Cancelled, 0));
        assert!(job.finished_at.is_some());
        // Cancelling again changes nothing; a cancelled job cannot resume.
        assert_eq!(
            store.transition_job(&cancelled, &JobTransition::Resume, now).await.unwrap(),
            Some(JobState::Cancelled)
        );
        assert_eq!(
            store.transition_job("job_nosuchjob1", &JobTransition::Cancel, now).await.unwrap(),
            None
        );

        let (id, request) = new_job(&store, JobState::Running).await;
        let chunks = store.claim_chunks("fg", Some(&id), &[], 3, now).await.unwrap();
        let first = &chunks[0];
        let committed = results_of(&request, first).len() as u64;
        store.commit_chunk(first, &results_of(&request, first), now).await.unwrap();
        let interrupt = JobTransition::Interrupt { holder: "fg".into() };
        assert_eq!(
            store.transition_job(&id, &interrupt, now).await.unwrap(),
            Some(JobState::Interrupted)
        );
        // Workers leave an interrupted job alone; its claims were given back.
        assert!(store.claim_chunks("worker", None, &[], 10, now).await.unwrap().is_empty());
        assert_eq!(
            store.commit_chunk(&chunks[1], &results_of(&request, &chunks[1]), now).await.unwrap(),
            ChunkCommit::Lost
        );
        assert_eq!(
            store.transition_job(&id, &JobTransition::Resume, now).await.unwrap(),
            Some(JobState::Running)
        );
        let rest = store.claim_chunks("fg2", Some(&id), &[], 100, now).await.unwrap();
        assert_eq!(rest.len(), search::chunks(&request).len() - 1, "all but the committed one");
        assert!(rest.iter().all(|c| c.chunk != first.chunk));
        let mut done = committed;
        for chunk in &rest {
            let results = results_of(&request, chunk);
            done += results.len() as u64;
            store.commit_chunk(chunk, &results, now).await.unwrap();
        }
        let job = store.job(&id).await.unwrap().unwrap();
        assert_eq!((job.state, job.done), (JobState::Completed, request.total()));
        assert_eq!(done, request.total());
        let listed = store.jobs(None, 10).await.unwrap();
        assert_eq!(listed.len(), 2);
    }
}
