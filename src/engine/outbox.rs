//! Delivering alerts through the outbox, exactly once in effect.
//!
//! Twilio's Messages API has no idempotency key, and a timeout or a 5xx does
//! not say whether a message was accepted. So:
//! - an intent (route, alert number, recipient, the exact body) is written
//!   *before* sending, and marked sent with the provider's message id after;
//!   without a durable intent nothing is sent;
//! - a send whose outcome is unknown (timeout, 5xx, connection lost after
//!   writing) is settled **within the cycle** when the channel can list what
//!   it sent ([`Notifier::can_list_sent`]): after [`Settle::delay`] the
//!   outbox lists that recipient's messages since the intent was written
//!   ([`Notifier::find_sent`]); found means sent (its id is recorded), not
//!   found means the same stored text is sent again under the same intent
//!   key; this repeats with full-jitter backoff for at most
//!   [`Settle::bound`]. Only what is still unknown then waits for the next
//!   cycle;
//! - an intent left pending (still unknown after the bound, or a crash
//!   mid-send) is never resent blindly: every cycle first lists what the
//!   channel actually delivered; found means sent, not found means the
//!   stored message may be sent again;
//! - a channel that cannot list what it sent (Slack, Discord, webhooks) is
//!   not retried within the cycle after an unknown outcome: its intent stays
//!   pending and is resent once by the next cycle, at least once rather than
//!   exactly once (README, Channels);
//! - the route's new alert state is saved in the same transaction as the
//!   last recipient's record, so an alert is complete exactly when its state
//!   is saved. Until then its intents keep their keys, and a retry texts only
//!   the recipients still missing;
//! - a permanent refusal (invalid number, STOP, ...) is recorded and never
//!   retried; a STOP also stops that recipient for the route;
//! - if the price rises above the maximum before an alert is complete, the
//!   alert is closed (pending intents marked failed) and the state numbered
//!   past it, so the next drop starts with fresh keys;
//! - runs overlapping on one database (a slow cron run and the next tick)
//!   leave each other's alerts alone: every intent is claimed by the run
//!   that wrote it ([`crate::store::RunId`]). An intent pending under another
//!   live run is neither reconciled (that run may be about to send it, so
//!   its absence from the provider's list proves nothing) nor sent, and the
//!   rest of that alert is left to that run: reported *in progress
//!   elsewhere*. One another run sent is *sent elsewhere*. Neither is a
//!   failure. A dead run's intents (a crash) are taken over and reconciled.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;

use super::plan::StateChange;
use super::report::add_count;
use super::{AlertOutcome, Channel, CycleContext, Engine, EngineError, RouteReport};
use crate::domain::Recipient;
use crate::notify::{Delivery, NotifyError};
use crate::route::Route;
use crate::rules::AlertState;
use crate::store::{Intent, IntentStatus};
use crate::upstream::arc::Signal;
use crate::upstream::retry::{retry, Backoff, Jitter, Retryable};

/// One message for the outbox: about `subject` (a route id, or a watched
/// flight), its `seq`-th alert, to every recipient.
#[derive(Debug)]
pub(super) struct Outgoing<'a> {
    /// What the message is about; the intents' `route_id`.
    pub(super) subject: &'a str,
    /// Which alert of the subject this is (part of each intent's key).
    pub(super) seq: u64,
    /// Whom to send it to.
    pub(super) recipients: &'a [Recipient],
    /// The text.
    pub(super) body: &'a str,
    /// State to save with the last recipient's record (fare alerts).
    pub(super) completes: Option<&'a AlertState>,
    /// How logs name it (`row 7`).
    pub(super) what: &'a str,
}

/// What happened to an [`Outgoing`] message.
#[derive(Debug, Default)]
pub(super) struct Delivered {
    /// Recipients whose message was accepted in this call.
    pub(super) sent: usize,
    /// Recipients whose message was not accepted.
    pub(super) failed: usize,
    /// Recipients whose message another run sent.
    pub(super) sent_elsewhere: usize,
    /// Recipients left to another live run that is sending this message.
    pub(super) in_progress_elsewhere: usize,
    /// What went wrong, per recipient.
    pub(super) errors: Vec<String>,
    /// Every recipient is settled (sent now or earlier, or refused for good).
    pub(super) complete: bool,
}

/// How a channel settles a send whose outcome is unknown, within the cycle
/// ([`super::NotifyLimits::settle_delay`] and `settle_bound`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Settle {
    /// Wait before the first look-up, and the base of the backoff between
    /// later rounds.
    pub(super) delay: Duration,
    /// No round starts whose wait would end later than this after the first
    /// unknown outcome; so one message takes at most this plus one send and
    /// one look-up (each bounded by the channel's timeout).
    pub(super) bound: Duration,
}

impl Engine {
    /// Settles intents left pending by an earlier cycle or run; returns the
    /// keys confirmed undelivered (safe to send again this cycle).
    pub(super) async fn reconcile_pending(
        &self,
        mine: impl Fn(&Intent) -> bool,
    ) -> Result<HashSet<String>, EngineError> {
        // Another live run's intents are its own to settle.
        let pending = self.store.claim_pending(&self.run).await?;
        let mut resendable = HashSet::new();
        for intent in pending.into_iter().filter(|i| mine(i)) {
            let Ok(to) = Recipient::parse(&intent.recipient) else {
                continue;
            };
            // Only the channel that made the attempt can say what it delivered.
            let Some(channel) = self
                .channel_for(&to)
                .filter(|c| c.notifier.name() == intent.channel)
            else {
                continue;
            };
            if !channel.notifier.can_list_sent() {
                // Nothing to look up: resent once this cycle, at least once.
                tracing::info!(key = %intent.key, channel = %intent.channel, "an earlier send has an unknown outcome and the channel cannot list what it sent: sending it again");
                resendable.insert(intent.key);
                continue;
            }
            match channel
                .notifier
                .find_sent(&to, &intent.body, intent.created_at)
                .await
            {
                Ok(Some(message_id)) => {
                    tracing::info!(key = %intent.key, %message_id, "an earlier send was delivered after all: recorded");
                    if let Err(error) = self.store.record_sent(&intent.key, &message_id, None).await
                    {
                        tracing::warn!(key = %intent.key, %error, "could not record a reconciled message");
                    }
                }
                Ok(None) => {
                    tracing::info!(key = %intent.key, "an earlier send was not delivered: it may be sent again");
                    resendable.insert(intent.key);
                }
                Err(error) => {
                    tracing::warn!(key = %intent.key, %error, "cannot tell whether an earlier send was delivered; not resending it this cycle");
                }
            }
        }
        Ok(resendable)
    }

    /// Sends one fare alert to every recipient of `route` through the outbox;
    /// the route's new state is saved with the last recipient's record.
    pub(super) async fn deliver(
        &self,
        route: &Route,
        route_id: &str,
        next: &AlertState,
        body: &str,
        context: &CycleContext,
        report: &mut RouteReport,
    ) {
        let what = format!("row {}", route.line);
        let delivered = self
            .deliver_outgoing(
                &Outgoing {
                    subject: route_id,
                    seq: next.alerts_sent,
                    recipients: &route.recipients,
                    body,
                    completes: Some(next),
                    what: &what,
                },
                context,
            )
            .await;
        report.messages_sent = add_count(report.messages_sent, delivered.sent);
        report.messages_failed = add_count(report.messages_failed, delivered.failed);
        report.messages_elsewhere = add_count(
            report.messages_elsewhere,
            delivered.sent_elsewhere + delivered.in_progress_elsewhere,
        );
        report.errors.extend(delivered.errors);
        // Another live run sending it settles it; anything else incomplete
        // is this run's to finish.
        report.unsettled = !delivered.complete && delivered.in_progress_elsewhere == 0;
        report.alert = if delivered.failed > 0 {
            AlertOutcome::Failed
        } else if delivered.in_progress_elsewhere > 0 {
            AlertOutcome::InProgressElsewhere
        } else if !delivered.complete {
            AlertOutcome::Failed
        } else if delivered.sent == 0 && delivered.sent_elsewhere > 0 {
            AlertOutcome::SentElsewhere
        } else {
            AlertOutcome::Sent
        };
    }

    /// Sends one message to each of its recipients through the outbox, once
    /// in effect: an intent is written before sending, a pending one is only
    /// resent once reconciliation confirmed it was not delivered, permanent
    /// refusals are final, and `completes` (if any) is saved in the same
    /// transaction as the last recipient's record.
    pub(super) async fn deliver_outgoing(
        &self,
        out: &Outgoing<'_>,
        context: &CycleContext,
    ) -> Delivered {
        let mut done = Delivered {
            complete: true,
            ..Delivered::default()
        };
        let total = out.recipients.len();
        for (i, recipient) in out.recipients.iter().enumerate() {
            let is_last = i + 1 == total;
            let completes = |terminal: bool| {
                out.completes
                    .filter(|_| is_last && terminal)
                    .map(|state| (out.subject, state))
            };
            if context
                .suppressed
                .contains(&(out.subject.to_owned(), recipient.to_string()))
            {
                done.errors.push(format!(
                    "{recipient}: replied STOP, not texted until the row's recipients change"
                ));
                if let Some((id, state)) = completes(done.complete) {
                    self.save_state_logged(out.what, id, state).await;
                }
                continue;
            }
            let Some(slot) = self.channel_for(recipient) else {
                done.failed += 1;
                done.errors.push(format!(
                    "{recipient}: no such channel is configured; set {}",
                    recipient.channel_env_var().unwrap_or_default()
                ));
                done.complete = false;
                continue;
            };
            let channel = slot.notifier.name();
            let key = format!("{}#{}#{recipient}", out.subject, out.seq);
            let intent = Intent {
                key: key.clone(),
                route_id: out.subject.to_owned(),
                seq: out.seq,
                recipient: recipient.to_string(),
                channel: channel.to_owned(),
                body: out.body.to_owned(),
                created_at: Timestamp::now(),
            };
            let (text, since) = match self.store.open_intent(&intent, &self.run).await {
                Ok(IntentStatus::New) => (out.body.to_owned(), intent.created_at),
                Ok(IntentStatus::Pending {
                    body: stored,
                    created_at,
                }) if context.resendable.contains(&key) => (stored, created_at),
                Ok(IntentStatus::Pending { .. }) => {
                    done.failed += 1;
                    done.errors.push(format!(
                        "{recipient}: an earlier send is unconfirmed; not resent until {channel} confirms it was not delivered"
                    ));
                    done.complete = false;
                    continue;
                }
                Ok(IntentStatus::ClaimedElsewhere { by }) => {
                    // Another live run is sending this message, and it goes
                    // through the recipients in the same order: the rest of
                    // the alert (and saving its state) is that run's.
                    tracing::info!(what = out.what, %recipient, run = %by, "another run is sending this alert: left to it");
                    done.in_progress_elsewhere += total - i;
                    done.complete = false;
                    break;
                }
                Ok(IntentStatus::SentElsewhere { message_id, by }) => {
                    tracing::info!(what = out.what, %recipient, %message_id, run = %by, "sent by another run");
                    done.sent_elsewhere += 1;
                    if let Some((id, state)) = completes(done.complete) {
                        self.save_state_logged(out.what, id, state).await;
                    }
                    continue;
                }
                Ok(IntentStatus::Sent { .. } | IntentStatus::Failed { .. }) => {
                    // Settled in an earlier run that stopped before saving the state.
                    if let Some((id, state)) = completes(done.complete) {
                        self.save_state_logged(out.what, id, state).await;
                    }
                    continue;
                }
                Err(error) => {
                    // No durable intent, no message.
                    done.errors.push(format!(
                        "{recipient}: not sent, the outbox is unavailable: {error}"
                    ));
                    done.failed += 1;
                    done.complete = false;
                    continue;
                }
            };
            match send_settled(slot, recipient, &text, since, out.what).await {
                Ok(delivery) => {
                    done.sent += 1;
                    tracing::info!(what = out.what, %recipient, id = %delivery.id, "alert sent");
                    if let Err(error) = self
                        .store
                        .record_sent(&key, &delivery.id, completes(done.complete))
                        .await
                    {
                        // The message went out but is not recorded; the next
                        // cycle's reconciliation finds it.
                        done.errors.push(format!(
                            "{recipient}: sent as {} but not recorded: {error}",
                            delivery.id
                        ));
                        done.complete = false;
                    }
                }
                Err(error @ (NotifyError::Permanent { .. } | NotifyError::Unsubscribed { .. })) => {
                    done.failed += 1;
                    done.errors.push(format!("{channel}: {recipient}: {error}"));
                    if matches!(error, NotifyError::Unsubscribed { .. }) {
                        if let Err(store_error) = self
                            .store
                            .suppress(out.subject, &recipient.to_string(), &error.to_string())
                            .await
                        {
                            tracing::warn!(%recipient, %store_error, "could not record the STOP");
                        }
                    }
                    if let Err(store_error) = self
                        .store
                        .record_failed(&key, &error.to_string(), completes(done.complete))
                        .await
                    {
                        done.errors
                            .push(format!("{recipient}: failure not recorded: {store_error}"));
                        done.complete = false;
                    }
                }
                Err(error) => {
                    // Still unknown after settling, or refused for now: left
                    // pending, reconciled (then resent if not found) next cycle.
                    done.failed += 1;
                    done.errors.push(format!("{channel}: {recipient}: {error}"));
                    done.complete = false;
                }
            }
        }
        done
    }

    /// Saves a state change that comes without a message: the price is above
    /// the maximum, so the row re-arms, closing an alert that was started
    /// for the drop that just ended.
    pub(super) async fn change_state(
        &self,
        route: &Route,
        route_id: &str,
        change: StateChange,
        report: &mut RouteReport,
    ) {
        match change {
            StateChange::Keep => {}
            StateChange::Rearm(next) => {
                self.save_state_logged(&format!("row {}", route.line), route_id, &next)
                    .await;
            }
            StateChange::CloseUnfinished { seq, state } => {
                let reason = "the price rose above the maximum before the alert was delivered";
                match self
                    .store
                    .close_alert(route_id, seq, reason, &state, &self.run)
                    .await
                {
                    Ok(None) => tracing::info!(
                        row = route.line,
                        seq,
                        "another run is still sending this alert; it is left to that run"
                    ),
                    Ok(Some(sent)) => tracing::info!(
                        row = route.line,
                        seq,
                        sent,
                        "closed an unfinished alert: {reason}"
                    ),
                    Err(error) => report
                        .errors
                        .push(format!("could not close an unfinished alert: {error}")),
                }
            }
        }
    }

    /// A dry run shows each message it would send, as the channel would
    /// get it, and sends nothing.
    pub(super) async fn show_dry_run(&self, route: &Route, body: &str) {
        for recipient in &route.recipients {
            if let Some(channel) = self.channel_for(recipient) {
                let _ = channel.notifier.send(recipient, body).await;
            }
        }
    }

    async fn save_state_logged(&self, what: &str, route_id: &str, state: &AlertState) {
        if let Err(error) = self.store.save_state(route_id, state).await {
            tracing::warn!(what, %error, "could not save the alert state");
        }
    }
}

/// Retries for a send that was certainly not processed (Twilio's 20429, a
/// connection never made): a few quick tries, then the next cycle. Anything
/// ambiguous is never retried here; the outbox reconciles it first.
const SEND_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4), 3);

/// Sends within the channel's adaptive concurrency and pacing and its hard
/// timeout, retrying only what was certainly not processed.
async fn send(channel: &Channel, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
    let mut jitter = Jitter::from_entropy();
    retry(&SEND_BACKOFF, &mut jitter, |_attempt| {
        through_controller(channel, channel.notifier.send(to, body))
    })
    .await
}

/// One request to a channel: a turn from its controller, the hard timeout
/// (after which the outcome is unknown), and what the answer says fed back.
async fn through_controller<T>(
    channel: &Channel,
    request: impl std::future::Future<Output = Result<T, NotifyError>>,
) -> Result<T, NotifyError> {
    let Some(ticket) = channel.controller.acquire(|| false).await else {
        return Err(NotifyError::Unreachable("the channel is closed".into()));
    };
    let result = match tokio::time::timeout(channel.timeout, request).await {
        Ok(result) => result,
        Err(_) => Err(NotifyError::Ambiguous(format!(
            "no answer within {:?}",
            channel.timeout
        ))),
    };
    let rtt = ticket.started().elapsed();
    ticket.finish(match &result {
        Ok(_) | Err(NotifyError::Permanent { .. } | NotifyError::Unsubscribed { .. }) => {
            Signal::Answered { rtt }
        }
        // Twilio's 20429: the account's concurrency cap.
        Err(NotifyError::RateLimited { retry_after, .. }) => Signal::Refused {
            retry_after: *retry_after,
        },
        Err(NotifyError::Ambiguous(_)) => Signal::Overloaded,
        Err(_) => Signal::Failed,
    });
    result
}

/// Sends, then settles an unknown outcome within the cycle when the channel
/// can list what it sent: wait, look the message up (sent since `since`,
/// the intent's creation), record it if found, send the same text again if
/// not, and repeat with full-jitter backoff within [`Settle::bound`].
///
/// Returns the delivery (sent now, or found already sent), a refusal, or the
/// last unknown outcome, which leaves the intent pending. A channel that
/// cannot list is never resent here (see [`Notifier::can_list_sent`]).
///
/// [`Notifier::can_list_sent`]: crate::notify::Notifier::can_list_sent
async fn send_settled(
    channel: &Channel,
    to: &Recipient,
    body: &str,
    since: Timestamp,
    what: &str,
) -> Result<Delivery, NotifyError> {
    let mut unknown = match send(channel, to, body).await {
        Err(NotifyError::Ambiguous(detail)) if channel.notifier.can_list_sent() => detail,
        settled => return settled,
    };
    let settle = channel.settle;
    // Round n waits the settle delay plus a full-jitter draw from
    // [0, delay * 2^(n-1)] (none before the first look-up), capped at 8 delays.
    let backoff = Backoff::new(settle.delay, settle.delay.saturating_mul(8), u32::MAX);
    let mut jitter = Jitter::from_entropy();
    let started = tokio::time::Instant::now();
    for round in 0u32.. {
        let wait = match round.checked_sub(1) {
            None => settle.delay,
            Some(retry) => settle.delay + backoff.delay(retry, &mut jitter),
        };
        if started.elapsed() + wait > settle.bound {
            break;
        }
        tokio::time::sleep(wait).await;
        // Look-ups count against the channel's limits like sends do.
        let found = through_controller(channel, channel.notifier.find_sent(to, body, since)).await;
        match found {
            Ok(Some(id)) => {
                tracing::info!(what, %to, %id, round, "an unconfirmed send was delivered: recorded");
                return Ok(Delivery { id, segments: None });
            }
            Ok(None) => {
                tracing::info!(what, %to, round, "an unconfirmed send was not delivered: sending it again");
                match send(channel, to, body).await {
                    Err(NotifyError::Ambiguous(detail)) => unknown = detail,
                    settled => return settled,
                }
            }
            // A look-up is a read: a timeout, a 5xx or a throttle may pass.
            Err(error) if error.should_retry() || matches!(error, NotifyError::Ambiguous(_)) => {
                tracing::info!(what, %to, %error, round, "could not list sent messages; trying again");
            }
            Err(error) => {
                tracing::warn!(what, %to, %error, "could not list sent messages; left for the next cycle");
                break;
            }
        }
    }
    Err(NotifyError::Ambiguous(format!(
        "{unknown}; still unknown after reconciling within {:?}",
        settle.bound
    )))
}
