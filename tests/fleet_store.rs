//! The fleet's due routes in the store, on SQLite and PostgreSQL: claims
//! are disjoint, a completed route is not due again until its next time, a
//! lapsed claim is taken over and its old holder's completion refused, a
//! renewed one is not; routes gone from the sheet are forgotten; the
//! `sheet` lease has one holder at a time; the sheet's copy keeps its
//! bytes and knows when they changed.

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
        assert_eq!(store.register_due(&routes, t0).await.unwrap(), 10);
        assert_eq!(store.register_due(&routes, t0).await.unwrap(), 0, "known already");
        let (a_token, a) = store.claim_due("a", &[], 4, t0, lease).await.unwrap();
        let (b_token, b) = store.claim_due("b", &[], 100, t0, lease).await.unwrap();
        assert_eq!((a.len(), b.len()), (4, 6));
        assert!(a.iter().all(|id| !b.contains(id)), "disjoint claims");
        let (_, none) = store.claim_due("c", &[], 100, t0, lease).await.unwrap();
        assert!(none.is_empty(), "everything is held");
        let summary = store.due_summary(t0).await.unwrap();
        assert_eq!((summary.routes, summary.due, summary.leased), (10, 0, 10));

        // Completed: next due in an hour.
        let next = t0 + SignedDuration::from_hours(1);
        assert_eq!(store.complete_due("a", &a_token, &a, next, t0).await.unwrap(), 4);
        assert_eq!(store.complete_due("a", &a_token, &a, next, t0).await.unwrap(), 0, "once");
        let later = t0 + SignedDuration::from_mins(30);
        // b's lease ran out (b died): its routes are taken over; a's are not due.
        let (c_token, c) = store.claim_due("c", &[], 100, later, lease).await.unwrap();
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
            .claim_due("a", &[], 100, next + SignedDuration::from_secs(1), lease)
            .await
            .unwrap();
        assert_eq!(again.len(), 10);

        // Routes held by a holder known to be dead are taken at once.
        let spare = vec!["spare-1".to_owned(), "spare-2".to_owned()];
        store.register_due(&spare, t0).await.unwrap();
        let (_, held) = store.claim_due("gone", &[], 10, t0, lease).await.unwrap();
        assert_eq!(held.len(), 2);
        let (_, blocked) = store.claim_due("live", &[], 10, t0, lease).await.unwrap();
        assert!(blocked.is_empty());
        let (_, rescued) = store
            .claim_due("live", &["gone".to_owned()], 10, t0, lease)
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

on_both_backends! {
    async fn a_renewed_claim_is_kept_and_routes_gone_from_the_sheet_are_forgotten(db: TestDb) {
        let store = db.open().await;
        let t0 = Timestamp::now();
        let lease = SignedDuration::from_mins(1);
        store.register_due(&ids(6), t0).await.unwrap();
        let (token, held) = store.claim_due("slow", &[], 3, t0, lease).await.unwrap();
        assert_eq!(held.len(), 3);
        // Renewed before it ran out: a minute and a half on it still holds.
        let t1 = t0 + SignedDuration::from_secs(40);
        assert_eq!(store.extend_due(&token, t1 + lease).await.unwrap(), 3);
        let t2 = t0 + SignedDuration::from_secs(90);
        let (_, others) = store.claim_due("quick", &[], 10, t2, lease).await.unwrap();
        assert_eq!(others.len(), 3, "only the three not held");
        assert!(others.iter().all(|id| !held.contains(id)));
        // Unrenewed, it lapses, and a renewal after a takeover says so.
        let t3 = t1 + lease + SignedDuration::from_secs(1);
        let (_, taken) = store.claim_due("quick", &[], 10, t3, lease).await.unwrap();
        assert_eq!(taken.len(), 3);
        assert_eq!(store.extend_due(&token, t3 + lease).await.unwrap(), 0);

        // The sheet lost route-04 and route-05: while a live claim holds
        // them they stay; once it lapses they are forgotten.
        let keep = ids(4);
        let t4 = t3 + SignedDuration::from_secs(1);
        assert_eq!(store.prune_due(&keep, t4).await.unwrap(), 0, "both are held");
        assert_eq!(store.due_summary(t4).await.unwrap().routes, 6);
        let later = t4 + SignedDuration::from_hours(1);
        assert_eq!(store.prune_due(&keep, later).await.unwrap(), 2);
        let summary = store.due_summary(later).await.unwrap();
        assert_eq!((summary.routes, summary.due), (4, 4));
    }

}

on_both_backends! {
    async fn one_daemon_at_a_time_reads_the_sheet_for_the_fleet(db: TestDb) {
        let store = db.open().await;
        // Whole seconds: PostgreSQL keeps microseconds.
        let t0 = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
        let until = |t: Timestamp| t + SignedDuration::from_mins(3);
        assert!(store.take_lease("sheet", "a", &[], t0, until(t0)).await.unwrap());
        assert!(!store.take_lease("sheet", "b", &[], t0, until(t0)).await.unwrap(), "a holds it");
        let t1 = t0 + SignedDuration::from_mins(1);
        assert!(store.take_lease("sheet", "a", &[], t1, until(t1)).await.unwrap(), "renewed");
        assert!(!store.take_lease("sheet", "b", &[], t1, until(t1)).await.unwrap());
        // a is known dead: b takes it at once; then a's renewal fails.
        assert!(store.take_lease("sheet", "b", &["a".to_owned()], t1, until(t1)).await.unwrap());
        assert!(!store.take_lease("sheet", "a", &[], t1, until(t1)).await.unwrap());
        // b stops renewing: after its time, c takes it.
        let t2 = until(t1) + SignedDuration::from_secs(1);
        assert!(store.take_lease("sheet", "c", &[], t2, until(t2)).await.unwrap());
        let leases = store.fleet_leases().await.unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!((leases[0].name.as_str(), leases[0].holder.as_str()), ("sheet", "c"));
        assert_eq!(leases[0].until, until(t2));

        // The sheet's copy.
        assert_eq!(store.sheet_digest().await.unwrap(), None);
        assert_eq!(store.stored_sheet().await.unwrap(), None);
        let v1 = b"origin,destination\nLHR,JFK\n";
        assert!(store.save_sheet("routes.csv", v1, "c", t2).await.unwrap(), "the first");
        let t3 = t2 + SignedDuration::from_mins(1);
        assert!(!store.save_sheet("routes.csv", v1, "c", t3).await.unwrap(), "the same bytes");
        let stored = store.stored_sheet().await.unwrap().unwrap();
        assert_eq!(stored.body, v1);
        assert_eq!((stored.changed_at, stored.synced_at), (t2, t3));
        assert_eq!(stored.digest, farewatch::store::fleet::sheet_digest(v1));
        let v2 = b"origin,destination\nLHR,JFK\nCDG,NRT\n";
        let t4 = t3 + SignedDuration::from_mins(1);
        assert!(store.save_sheet("routes.csv", v2, "d", t4).await.unwrap(), "edited");
        let stored = store.stored_sheet().await.unwrap().unwrap();
        assert_eq!((stored.body.as_slice(), stored.changed_at), (&v2[..], t4));
        assert_eq!(stored.synced_by, "d");
        assert_eq!(store.sheet_digest().await.unwrap(), Some(stored.digest));
    }
}
