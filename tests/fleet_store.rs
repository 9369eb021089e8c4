//! The fleet's due routes in the store, on SQLite and PostgreSQL: claims
//! are disjoint, a completed route is not due again until its next time, a
//! lapsed claim is taken over and its old holder's completion refused.

mod common;

use jiff::{SignedDuration, Timestamp};

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("route-{i:02}")).collect()
}

on_both_backends! {
    async fn due_routes_are_claimed_once_and_come_back_when_due(db: TestDb) {
        let store = db.open().await;
        let routes = ids(10);
        let t0 = Timestamp::now();
        let lease = SignedDuration::from_mins(15);
        let (a_token, a) = store.claim_due("a", &routes, &[], 4, t0, lease).await.unwrap();
        let (b_token, b) = store.claim_due("b", &routes, &[], 100, t0, lease).await.unwrap();
        assert_eq!((a.len(), b.len()), (4, 6));
        assert!(a.iter().all(|id| !b.contains(id)), "disjoint claims");
        let (_, none) = store.claim_due("c", &routes, &[], 100, t0, lease).await.unwrap();
        assert!(none.is_empty(), "everything is held");
        let summary = store.due_summary(t0).await.unwrap();
        assert_eq!((summary.routes, summary.due, summary.leased), (10, 0, 10));

        // Completed: next due in an hour.
        let next = t0 + SignedDuration::from_hours(1);
        assert_eq!(store.complete_due("a", &a_token, &a, next, t0).await.unwrap(), 4);
        assert_eq!(store.complete_due("a", &a_token, &a, next, t0).await.unwrap(), 0, "once");
        let later = t0 + SignedDuration::from_mins(30);
        // b's lease ran out (b died): its routes are taken over; a's are not due.
        let (c_token, c) = store.claim_due("c", &routes, &[], 100, later, lease).await.unwrap();
        let mut c_sorted = c.clone();
        c_sorted.sort();
        let mut b_sorted = b.clone();
        b_sorted.sort();
        assert_eq!(c_sorted, b_sorted);
        assert_eq!(
            store.complete_due("b", &b_token, &b, next, later).await.unwrap(),
            0,
            "the old holder's completion is refused"
        );
        assert_eq!(store.complete_due("c", &c_token, &c, next, later).await.unwrap(), 6);
        // An hour on, all ten are due again.
        let (_, again) = store
            .claim_due("a", &routes, &[], 100, next + SignedDuration::from_secs(1), lease)
            .await
            .unwrap();
        assert_eq!(again.len(), 10);

        // Routes held by a holder known to be dead are taken at once.
        let spare = vec!["spare-1".to_owned(), "spare-2".to_owned()];
        let (_, held) = store.claim_due("gone", &spare, &[], 10, t0, lease).await.unwrap();
        assert_eq!(held.len(), 2);
        let (_, blocked) = store.claim_due("live", &spare, &[], 10, t0, lease).await.unwrap();
        assert!(blocked.is_empty());
        let (_, rescued) = store
            .claim_due("live", &spare, &["gone".to_owned()], 10, t0, lease)
            .await
            .unwrap();
        assert_eq!(rescued.len(), 2);

        store.beat("a", "daemon", 4, 4, later).await.unwrap();
        store.beat("a", "daemon", 10, 0, next).await.unwrap();
        store.beat("c", "daemon", 6, 6, later).await.unwrap();
        let nodes = store.fleet_nodes(next).await.unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].holder, "a", "most recently seen first");
        assert_eq!((nodes[0].claimed, nodes[0].done, nodes[0].holding), (14, 4, 10));
        assert_eq!((nodes[1].claimed, nodes[1].done, nodes[1].holding), (6, 6, 0));
    }
}
