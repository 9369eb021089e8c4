//! Watched flights: poll each due watch, find what changed since the state
//! saved for it, and send each change through the outbox.
//!
//! A watch's changes are numbered from the saved state (`alerts_sent + i`),
//! so the outbox keys `watch:<id>#<n>#<recipient>` are the same if a run
//! stops after sending and before saving: the next run recomputes the same
//! changes, finds them sent and only then saves the state. The state is
//! saved once every recipient of every change is settled; until then each
//! poll tries the missing ones again.

use std::collections::HashSet;

use jiff::Timestamp;

use super::outbox::Outgoing;
use super::{CycleContext, Engine, EngineError};
use crate::status::alerts::{self, WatchState};
use crate::status::failover::StatusFailover;
use crate::status::poller::next_poll_in;
use crate::status::snapshots::Snapshot;
use crate::status::watch::Watch;
use crate::status::{FlightState, StatusQuery};

/// Outbox subjects (and store keys) of watched flights start with this.
pub(super) const SUBJECT_PREFIX: &str = "watch:";

/// What happened to one watch.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WatchReport {
    /// The row's line in the watch list.
    pub row: usize,
    /// The flight.
    pub flight: String,
    /// Its date.
    pub date: String,
    /// Its status, when a provider answered.
    pub status: Option<FlightState>,
    /// False when it was not due yet (the poll schedule said later).
    pub polled: bool,
    /// The alerts sent or attempted, as texted.
    pub alerts: Vec<String>,
    /// Messages accepted.
    pub sent: usize,
    /// Messages not accepted (retried next poll).
    pub failed: usize,
    /// Problems: provider failures, failed sends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Engine {
    /// Polls every due watch and alerts its changes.
    pub async fn run_watches(
        &self,
        watches: &[Watch],
        status: &StatusFailover,
    ) -> Result<Vec<WatchReport>, EngineError> {
        let context = CycleContext {
            states: std::collections::HashMap::new(),
            suppressed: self.store.suppressed().await?,
            unfinished: std::collections::HashMap::new(),
            resendable: if self.dry_run {
                HashSet::new()
            } else {
                self.reconcile_pending(|i| i.route_id.starts_with(SUBJECT_PREFIX))
                    .await?
            },
        };
        // Which watches are due, then one batch for all of them (the
        // failover sends a batch to the healthiest, fastest provider first).
        let now = self.clock.now();
        let mut due = Vec::with_capacity(watches.len());
        for watch in watches {
            let next_key = format!("{SUBJECT_PREFIX}{}:next", watch.id());
            let not_yet = matches!(
                self.store.kv_get(&next_key).await,
                Ok(Some(next)) if next.parse::<Timestamp>().is_ok_and(|next| next > now)
            );
            due.push(!not_yet);
        }
        let queries: Vec<StatusQuery> = watches
            .iter()
            .zip(&due)
            .filter(|(_, due)| **due)
            .map(|(w, _)| StatusQuery::Flight {
                ident: w.flight.clone(),
                date: Some(w.date),
            })
            .collect();
        let mut answers = status.flights_many(&queries).await.into_iter();
        let mut reports = Vec::with_capacity(watches.len());
        for (watch, due) in watches.iter().zip(due) {
            let mut report = WatchReport {
                row: watch.line,
                flight: watch.flight.clone(),
                date: watch.date.to_string(),
                ..WatchReport::default()
            };
            if due {
                if let Some(answer) = answers.next() {
                    self.run_watch(watch, answer, now, &context, &mut report)
                        .await;
                }
            }
            reports.push(report);
        }
        Ok(reports)
    }

    async fn run_watch(
        &self,
        watch: &Watch,
        answer: Result<Vec<crate::status::FlightStatus>, crate::upstream::failover::AllFailed>,
        now: Timestamp,
        context: &CycleContext,
        report: &mut WatchReport,
    ) {
        let subject = format!("{SUBJECT_PREFIX}{}", watch.id());
        let due_key = format!("{subject}:next");
        report.polled = true;
        let query = StatusQuery::Flight {
            ident: watch.flight.clone(),
            date: Some(watch.date),
        };
        let flights = match answer {
            Ok(flights) => flights,
            Err(error) => {
                report.errors.push(format!("{query}: {error}"));
                return;
            }
        };
        let Some((flight, snapshot)) = flights.iter().find_map(|f| Snapshot::of(f).map(|s| (f, s)))
        else {
            report.errors.push(format!("{query}: no such flight found"));
            return;
        };
        report.status = Some(snapshot.status);
        let state: WatchState = match self.store.kv_get(&subject).await {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_default(),
            _ => WatchState::default(),
        };
        let (changes, next_state) = alerts::evaluate(watch, &state, &snapshot);
        let mut settled = true;
        for (i, change) in changes.iter().enumerate() {
            let body = alerts::render(&watch.flight, watch.date, change, &snapshot);
            report.alerts.push(body.clone());
            if self.dry_run {
                continue;
            }
            let what = format!("watch row {}", watch.line);
            let delivered = self
                .deliver_outgoing(
                    &Outgoing {
                        subject: &subject,
                        seq: state.alerts_sent + i as u64 + 1,
                        recipients: &watch.recipients,
                        body: &body,
                        completes: None,
                        what: &what,
                    },
                    context,
                )
                .await;
            report.sent += delivered.sent;
            report.failed += delivered.failed;
            report.errors.extend(delivered.errors);
            settled &= delivered.failed == 0 && delivered.complete;
        }
        if self.dry_run {
            return;
        }
        if settled {
            if let Ok(json) = serde_json::to_string(&next_state) {
                if let Err(error) = self.store.kv_put(&subject, &json, None).await {
                    report
                        .errors
                        .push(format!("cannot save the watch state: {error}"));
                }
            }
        }
        if !settled {
            // A send is still owed: poll (and retry it) next cycle.
            return;
        }
        // The next poll: tighter as departure nears, none after landing.
        let next = next_poll_in(flight, now)
            .and_then(|d| jiff::SignedDuration::try_from(d).ok())
            .and_then(|d| now.checked_add(d).ok());
        let value = next.map_or_else(|| "9999-12-31T00:00:00Z".to_owned(), |t| t.to_string());
        if let Err(error) = self.store.kv_put(&due_key, &value, None).await {
            tracing::warn!(%error, "cannot save the next poll time; polling again next cycle");
        }
    }
}
