//! The decision for one route, with no IO: what its lookups gathered, its
//! saved alert state and the time in; its report, the message to send and
//! the state to save out. The engine carries the plan out (outbox, store).
//!
//! The policy lives here: a non-positive price is a provider fault, not a
//! bargain; the cheapest quote of a route's lookups is the one decided on;
//! a route re-arms only on complete data; an alert left unfinished by an
//! earlier run is closed when the drop it announced has ended.

use std::sync::Arc;

use jiff::Timestamp;

use super::report::{base_report, AlertOutcome, Cheapest, RouteRef, RouteReport, RouteStatus};
use crate::domain::{LookupKey, Quote};
use crate::fare::failover::AllFailed;
use crate::notify::sms::{self, AlertText};
use crate::rules::{self, AlertState, Decision};

/// What a route has gathered while its lookups land. Every route has one
/// until its last lookup lands, so it is kept small: the best quote is
/// shared with the other routes that asked for the same lookup.
#[derive(Debug, Default)]
pub struct Gathering {
    /// Lookups still to land.
    pub pending: usize,
    /// Lookups the route asked for.
    pub lookups: usize,
    /// The cheapest usable quote so far, and the lookup that found it.
    pub best: Option<(Arc<Quote>, LookupKey)>,
    /// Failed lookups and unusable answers, `KEY: problem`.
    pub errors: Vec<String>,
}

impl Gathering {
    /// Folds one lookup's result in.
    pub fn land(&mut self, key: &LookupKey, result: &Result<Option<Arc<Quote>>, AllFailed>) {
        self.pending = self.pending.saturating_sub(1);
        match result {
            // A zero or negative total is a provider fault, not a bargain.
            Ok(Some(quote)) if quote.price.minor <= 0 => {
                self.errors.push(format!(
                    "{key}: {} quoted a non-positive price ({}); ignored",
                    quote.provider, quote.price
                ));
            }
            Ok(Some(quote)) => {
                let cheaper = match &self.best {
                    None => true,
                    Some((best, _)) => quote
                        .price
                        .checked_cmp(&best.price)
                        .is_some_and(|o| o.is_lt()),
                };
                if cheaper {
                    self.best = Some((Arc::clone(quote), *key));
                }
            }
            Ok(None) => {}
            Err(error) => self.errors.push(format!("{key}: {error}")),
        }
    }
}

/// A message to send for a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The text, the same for every recipient.
    pub body: String,
    /// The state saved once every recipient has it.
    pub completes: AlertState,
}

/// A state change that goes without a message.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    /// Nothing to save.
    Keep,
    /// The drop ended: save the re-armed state.
    Rearm(AlertState),
    /// The drop ended while alert `seq` was still unfinished (an earlier
    /// run died mid-send): close it and save `state`.
    CloseUnfinished {
        /// The unfinished alert's number.
        seq: u64,
        /// The state to save.
        state: AlertState,
    },
}

/// What to do for one route.
#[derive(Debug)]
pub struct RoutePlan {
    /// The route's line in the report (its alert outcome is filled in once
    /// the message is delivered).
    pub report: RouteReport,
    /// The message to send, if an alert is due.
    pub outgoing: Option<Outgoing>,
    /// The state to save when there is no message.
    pub next_state: StateChange,
}

/// Decides one route. `unfinished` is the number of an alert an earlier
/// run started for this route and did not complete, if any.
pub fn plan_route(
    route: &RouteRef,
    gathered: Gathering,
    state: &AlertState,
    unfinished: Option<u64>,
    now: Timestamp,
) -> RoutePlan {
    let mut report = base_report(route, gathered.lookups);
    report.errors = gathered.errors.into();
    let plan = |report, outgoing, next_state| RoutePlan {
        report,
        outgoing,
        next_state,
    };
    let Some((quote, key)) = gathered.best else {
        report.status = if report.errors.is_empty() {
            RouteStatus::NoOffers
        } else {
            RouteStatus::Error
        };
        return plan(report, None, StateChange::Keep);
    };
    report.cheapest = Some(Cheapest {
        origin: key.origin,
        destination: key.destination,
        depart_date: key.depart,
        return_date: key.return_date,
        quote: quote.clone(),
    });

    let (decision, next) = rules::evaluate(&route.rule, state, Some(quote.price), now);
    match decision {
        Decision::CurrencyMismatch { price } => {
            report.status = RouteStatus::Error;
            report.errors.push(format!(
                "{} answered in {}, the row is in {}: prices are never compared across currencies",
                quote.provider,
                price.currency,
                route.currency()
            ));
            plan(report, None, StateChange::Keep)
        }
        // A failed lookup might have been below: do not re-arm on partial data.
        Decision::Above { .. } if !report.errors.is_empty() => {
            report.status = RouteStatus::Error;
            plan(report, None, StateChange::Keep)
        }
        Decision::Above { rearmed, .. } => {
            report.status = RouteStatus::Above;
            let change = match unfinished {
                Some(seq) if seq > state.alerts_sent => StateChange::CloseUnfinished {
                    seq,
                    state: AlertState {
                        last_alerted: None,
                        alerts_sent: seq,
                        ..next
                    },
                },
                _ if rearmed => StateChange::Rearm(next),
                _ => StateChange::Keep,
            };
            plan(report, None, change)
        }
        Decision::Quiet { .. } => {
            report.status = RouteStatus::Below;
            report.alert = AlertOutcome::Suppressed;
            plan(report, None, StateChange::Keep)
        }
        Decision::NoQuote => {
            report.status = RouteStatus::NoOffers;
            plan(report, None, StateChange::Keep)
        }
        Decision::Alert { price, .. } => {
            report.status = RouteStatus::Below;
            let text = AlertText {
                route: &format!("{}-{}", key.origin, key.destination),
                label: route.label.as_deref(),
                depart: key.depart,
                return_date: key.return_date,
                price,
                max_price: route.rule.max_price,
            };
            // The Google Flights search first, then the provider's own link.
            let google = crate::links::google_flights_url(&key);
            let links: Vec<&str> = std::iter::once(google.as_str())
                .chain(quote.link.as_deref())
                .collect();
            let outgoing = Outgoing {
                body: sms::render_with_link(&text, &links),
                completes: next,
            };
            plan(report, Some(outgoing), StateChange::Keep)
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::domain::{Currency, DateRange, Iata, Money, Recipient, E164};
    use crate::route::Route;
    use crate::rules::{MinDrop, Rule};
    use crate::upstream::UpstreamError;

    fn gbp(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("GBP").unwrap())
    }

    fn route(max_minor: i64, cooldown: Option<SignedDuration>) -> RouteRef {
        RouteRef::single(Route {
            line: 2,
            label: None,
            origins: vec![Iata::parse("LHR").unwrap()],
            destinations: vec![Iata::parse("JFK").unwrap()],
            depart: DateRange::single("2027-03-01".parse().unwrap()),
            return_dates: None,
            adults: 1,
            rule: Rule {
                max_price: gbp(max_minor),
                min_drop: MinDrop::Zero,
                cooldown,
            },
            recipients: vec![Recipient::Phone(E164::parse("+447911123456").unwrap())],
            active: true,
            namespace: None,
        })
    }

    fn key(route: &Route) -> LookupKey {
        route.lookups().remove(0)
    }

    fn quote(minor: i64) -> Arc<Quote> {
        Arc::new(Quote {
            price: gbp(minor),
            provider: "serpapi".into(),
            fetched_at: now(),
            cached: false,
            found_at: None,
            link: None,
            insights: None,
            itinerary: None,
        })
    }

    fn now() -> Timestamp {
        "2027-01-10T08:00:00Z".parse().unwrap()
    }

    /// What one lookup answering `result` gathers for `route`.
    fn gathered(route: &Route, result: Result<Option<Arc<Quote>>, AllFailed>) -> Gathering {
        let mut g = Gathering {
            pending: 1,
            lookups: 1,
            ..Gathering::default()
        };
        g.land(&key(route), &result);
        g
    }

    fn failed() -> AllFailed {
        AllFailed {
            attempts: vec![(
                "serpapi",
                UpstreamError::Timeout(std::time::Duration::from_secs(20)),
            )],
        }
    }

    #[test]
    fn a_price_at_or_below_the_maximum_sends_one_message_that_completes_the_state() {
        let route = route(350_00, None);
        let plan = plan_route(
            &route,
            gathered(&route, Ok(Some(quote(312_46)))),
            &AlertState::default(),
            None,
            now(),
        );
        assert_eq!(plan.report.status, RouteStatus::Below);
        let outgoing = plan.outgoing.expect("an alert is due");
        assert!(
            outgoing
                .body
                .starts_with("farewatch: LHR-JFK 2027-03-01 now GBP 312.46"),
            "{}",
            outgoing.body
        );
        assert_eq!(outgoing.completes.last_alerted, Some(gbp(312_46)));
        assert_eq!(outgoing.completes.alerts_sent, 1);
        assert_eq!(plan.next_state, StateChange::Keep);
    }

    #[test]
    fn a_non_positive_price_is_an_error_not_a_bargain() {
        let route = route(350_00, None);
        let plan = plan_route(
            &route,
            gathered(&route, Ok(Some(quote(0)))),
            &AlertState::default(),
            None,
            now(),
        );
        assert_eq!(plan.report.status, RouteStatus::Error);
        assert!(plan.outgoing.is_none());
        assert!(
            plan.report.errors[0].contains("non-positive price"),
            "{:?}",
            plan.report.errors
        );
    }

    #[test]
    fn the_cheapest_of_several_lookups_is_decided_on() {
        let route = route(350_00, None);
        let mut g = Gathering {
            pending: 3,
            lookups: 3,
            ..Gathering::default()
        };
        let k = key(&route);
        g.land(&k, &Ok(Some(quote(400_00))));
        g.land(&k, &Ok(Some(quote(299_00))));
        g.land(&k, &Ok(None));
        assert_eq!(g.pending, 0);
        let plan = plan_route(&route, g, &AlertState::default(), None, now());
        assert_eq!(plan.report.price_minor(), Some(299_00));
    }

    #[test]
    fn an_alerted_route_above_its_maximum_re_arms_only_on_complete_data() {
        let route = route(350_00, None);
        let alerted = AlertState {
            last_alerted: Some(gbp(300_00)),
            last_alerted_at: Some(now()),
            alerts_sent: 1,
        };
        // Complete data: the drop ended, the route re-arms.
        let plan = plan_route(
            &route,
            gathered(&route, Ok(Some(quote(400_00)))),
            &alerted,
            None,
            now(),
        );
        assert_eq!(plan.report.status, RouteStatus::Above);
        let StateChange::Rearm(next) = plan.next_state else {
            panic!("expected a re-arm, got {:?}", plan.next_state);
        };
        assert_eq!((next.last_alerted, next.alerts_sent), (None, 1));

        // One lookup failed: it might have been below, so nothing changes.
        let mut g = Gathering {
            pending: 2,
            lookups: 2,
            ..Gathering::default()
        };
        g.land(&key(&route), &Ok(Some(quote(400_00))));
        g.land(&key(&route), &Err(failed()));
        let plan = plan_route(&route, g, &alerted, None, now());
        assert_eq!(plan.report.status, RouteStatus::Error);
        assert_eq!(plan.next_state, StateChange::Keep);
    }

    #[test]
    fn an_unfinished_alert_is_closed_when_its_drop_has_ended() {
        let route = route(350_00, None);
        let state = AlertState {
            alerts_sent: 1,
            ..AlertState::default()
        };
        let plan = plan_route(
            &route,
            gathered(&route, Ok(Some(quote(400_00)))),
            &state,
            Some(2),
            now(),
        );
        let StateChange::CloseUnfinished { seq, state } = plan.next_state else {
            panic!(
                "expected the unfinished alert closed, got {:?}",
                plan.next_state
            );
        };
        assert_eq!((seq, state.alerts_sent, state.last_alerted), (2, 2, None));
    }

    #[test]
    fn a_cooldown_holds_a_deeper_drop_until_it_has_passed() {
        let route = route(350_00, Some(SignedDuration::from_hours(6)));
        let alerted = AlertState {
            last_alerted: Some(gbp(340_00)),
            last_alerted_at: Some(now()),
            alerts_sent: 1,
        };
        let deeper = || gathered(&route, Ok(Some(quote(300_00))));
        let soon = now() + SignedDuration::from_hours(5);
        let plan = plan_route(&route, deeper(), &alerted, None, soon);
        assert_eq!(plan.report.alert, AlertOutcome::Suppressed);
        assert!(plan.outgoing.is_none());
        let later = now() + SignedDuration::from_hours(6);
        let plan = plan_route(&route, deeper(), &alerted, None, later);
        assert_eq!(plan.outgoing.unwrap().completes.alerts_sent, 2);
    }

    #[test]
    fn no_offers_and_failures_decide_nothing() {
        let route = route(350_00, None);
        let plan = plan_route(
            &route,
            gathered(&route, Ok(None)),
            &AlertState::default(),
            None,
            now(),
        );
        assert_eq!(
            (plan.report.status, plan.outgoing.is_none()),
            (RouteStatus::NoOffers, true)
        );
        let plan = plan_route(
            &route,
            gathered(&route, Err(failed())),
            &AlertState::default(),
            None,
            now(),
        );
        assert_eq!(
            (plan.report.status, plan.outgoing.is_none()),
            (RouteStatus::Error, true)
        );
    }
}
