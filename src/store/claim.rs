//! Which run is sending an alert: claims on outbox rows, and whether the
//! run that made one is still alive.
//!
//! A claim (`outbox.claimed_by`) names a run as `host/pid/start/run`: the
//! host name, the process id, the process's start time (clock ticks since
//! boot, from `/proc/<pid>/stat`; `0` where it cannot be read) and a number
//! for the run within the process (each [`RunId`], i.e. each engine, is one
//! run). A claim is **live** while its run can still act on the row:
//! - same process: the run's [`RunId`] has not been dropped;
//! - same host, another process: `kill(pid, 0)` finds the process and its
//!   start time is the one recorded (so a reused pid is not mistaken for it);
//! - another host, or a claim this build cannot read: `claimed_at` is less
//!   than [`CLAIM_LEASE`] old.
//!
//! "Same host" means the same host name: containers that share a state file
//! across pid namespaces need distinct host names (Docker's default), or a
//! pid from one would be checked in the other.
//!
//! A row with no claim (written before schema version 3) or a dead claim may
//! be taken over by any run.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;

/// How long a claim made on another host (whose processes cannot be checked)
/// counts as live: longer than any one message takes to send and settle
/// ([`crate::engine::DEFAULT_SETTLE_BOUND`] plus a send and a look-up), so
/// a run elsewhere is never overtaken mid-send; short enough that a crashed
/// host's alerts are taken over by the next run after it.
pub const CLAIM_LEASE: Duration = Duration::from_secs(10 * 60);

/// Runs of this process that are still alive (their [`RunId`] not dropped).
static LIVE_RUNS: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

/// This process: host, pid and start time.
struct Process {
    host: String,
    pid: u32,
    start: u64,
}

fn this_process() -> &'static Process {
    static THIS: OnceLock<Process> = OnceLock::new();
    THIS.get_or_init(|| {
        let pid = std::process::id();
        Process {
            host: host_name(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    })
}

/// One run (an engine): the owner of the outbox rows it claims. Dropping it
/// ends the run, so other runs of the same process may take its claims over.
pub struct RunId {
    id: String,
    run: u64,
}

impl RunId {
    /// A new run of this process.
    pub fn new() -> Self {
        let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        LIVE_RUNS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run);
        let p = this_process();
        Self {
            id: format!("{}/{}/{}/{run}", p.host, p.pid, p.start),
            run,
        }
    }

    /// `host/pid/start/run`, as stored in `outbox.claimed_by`.
    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RunId {
    fn drop(&mut self) {
        LIVE_RUNS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.run);
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RunId").field(&self.id).finish()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Whether the run that wrote `claim` at `claimed_at` may still act on its
/// row (see the module docs).
pub(crate) fn is_live(claim: &str, claimed_at: Option<Timestamp>, now: Timestamp) -> bool {
    let within_lease = || {
        claimed_at.is_some_and(|at| {
            jiff::SignedDuration::try_from(CLAIM_LEASE)
                .ok()
                .and_then(|lease| at.checked_add(lease).ok())
                .is_some_and(|until| until > now)
        })
    };
    let mut parts = claim.rsplitn(4, '/');
    let (Some(run), Some(start), Some(pid), Some(host)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return within_lease();
    };
    let (Ok(run), Ok(start), Ok(pid)) = (run.parse::<u64>(), start.parse::<u64>(), pid.parse())
    else {
        return within_lease();
    };
    let me = this_process();
    if host != me.host {
        return within_lease();
    }
    if pid == me.pid && start == me.start {
        return LIVE_RUNS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&run);
    }
    if !process_exists(pid) {
        return false;
    }
    // Alive: the same process unless its start time says the pid was reused.
    match start_time(pid) {
        Some(now_start) if start != 0 => now_start == start,
        _ => true,
    }
}

/// Of `holders` (names of [`RunId`]s: search-job workers, fleet daemons,
/// flight leaders), those known to be dead: a run of this host whose
/// process is gone (or a dropped run of this process). Holders elsewhere,
/// or names this build cannot read, are never known dead: their leases
/// run out instead.
pub fn known_dead(holders: &[String]) -> Vec<String> {
    let now = Timestamp::now();
    holders
        .iter()
        // Claimed "now": only a check of the process can make it dead.
        .filter(|holder| !is_live(holder, Some(now), now))
        .cloned()
        .collect()
}

/// A run that lasts as long as this process: the name under which it holds
/// claims that are not any one engine's (the quote cache's flights).
pub fn process_run() -> &'static RunId {
    static RUN: OnceLock<RunId> = OnceLock::new();
    RUN.get_or_init(RunId::new)
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks the pid.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    // EPERM: it exists but belongs to another user.
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a way to check, a process on this host is assumed alive: a claim
/// is then only taken over once its process is known to be gone elsewhere.
#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// The process's start time in clock ticks since boot (Linux `/proc`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so the
    // fields are counted from the last `)`; starttime is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer and its length are valid; the name is NUL-terminated
        // when it fits, and the last byte is never written past.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) } == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).replace('/', "_");
            if !name.is_empty() {
                return name;
            }
        }
    }
    "unknown-host".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_live_until_dropped() {
        let now = Timestamp::now();
        let run = RunId::new();
        let claim = run.as_str().to_owned();
        assert!(is_live(&claim, Some(now), now));
        drop(run);
        assert!(!is_live(&claim, Some(now), now), "dropped: {claim}");
    }

    #[test]
    fn another_live_process_on_this_host_is_live_and_a_gone_one_is_not() {
        let now = Timestamp::now();
        let me = this_process();
        // pid 1 always exists; its start time is not ours.
        let init_start = start_time(1).unwrap_or(0);
        assert!(is_live(&format!("{}/1/{init_start}/1", me.host), None, now));
        // A reused pid: alive, but started at another time.
        if init_start != 0 {
            assert!(!is_live(
                &format!("{}/1/{}/1", me.host, init_start + 1),
                None,
                now
            ));
        }
        // Beyond the kernel's pid range: gone.
        assert!(!is_live(&format!("{}/999999999/5/1", me.host), None, now));
    }

    #[test]
    fn only_gone_runs_of_this_host_are_known_dead() {
        let me = process_run().as_str().to_owned();
        let host = &this_process().host;
        let gone = format!("{host}/999999999/5/1");
        let elsewhere = "another-host/999999999/5/1".to_owned();
        let unreadable = "a/b".to_owned();
        let dead = known_dead(&[me, gone.clone(), elsewhere, unreadable]);
        assert_eq!(dead, [gone]);
    }

    #[test]
    fn another_host_or_an_unreadable_claim_holds_for_the_lease() {
        let now = Timestamp::now();
        let lease = jiff::SignedDuration::try_from(CLAIM_LEASE).unwrap();
        let fresh = now.checked_sub(lease / 2).unwrap();
        let stale = now.checked_sub(lease * 2).unwrap();
        for claim in ["elsewhere.example/123/456/1", "not a claim"] {
            assert!(is_live(claim, Some(fresh), now), "{claim}");
            assert!(!is_live(claim, Some(stale), now), "{claim}");
            assert!(!is_live(claim, None, now), "{claim}");
        }
    }
}
