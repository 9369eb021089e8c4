//! `farewatch fleet`: the daemons sharing this state database, the routes
//! due, the leases, and each provider's shared limit in Redis.

use anyhow::Result;
use farewatch::store::Store;
use jiff::Timestamp;

use crate::{config_error, say, Exit};

/// A node not seen for this long is shown as gone (its claims run out).
const GONE_AFTER: i64 = farewatch::app::fleet::LIVE_WITHIN.as_secs() as i64;

/// Runs `farewatch fleet`.
pub async fn run(database_url: Option<&str>, redis_url: Option<&str>) -> Result<Exit> {
    let store = match Store::open_setting(database_url).await {
        Ok(store) => store,
        Err(error) => return Ok(config_error(&error.into())),
    };
    let now = Timestamp::now();
    let nodes = store.fleet_nodes(now).await?;
    let due = store.due_summary(now).await?;
    say(format_args!(
        "routes {}: {} due now, {} held by a daemon ({})",
        due.routes,
        due.due,
        due.leased,
        store.location()
    ));
    for lease in store.fleet_leases().await? {
        let left = (lease.until - now).get_seconds();
        let state = if left >= 0 {
            format!("for {left}s more")
        } else {
            format!("lapsed {}s ago", -left)
        };
        say(format_args!(
            "lease {}: {} ({state})",
            lease.name, lease.holder
        ));
    }
    if let Some(sheet) = store.stored_sheet().await? {
        say(format_args!(
            "sheet {}: {} bytes, changed {}s ago, read {}s ago by {}",
            sheet.source,
            sheet.body.len(),
            (now - sheet.changed_at).get_seconds(),
            (now - sheet.synced_at).get_seconds(),
            sheet.synced_by
        ));
    }
    if let Some(url) = redis_url.filter(|u| !u.is_empty()) {
        match farewatch::fleet::limit_states(url).await {
            Ok(states) if states.is_empty() => {
                say(format_args!("shared limits: none used in the last hour"))
            }
            Ok(states) => {
                for limit in states {
                    say(format_args!(
                        "limit {}: {} processes, turns given {:.1}s ahead, {} spent today (UTC)",
                        limit.provider,
                        limit.live_nodes,
                        limit.backlog.as_secs_f64(),
                        limit.spent_today
                    ));
                }
            }
            Err(error) => say(format_args!("shared limits: Redis: {error}")),
        }
    }
    if nodes.is_empty() {
        say(format_args!(
            "no daemon has run with --fleet on this database yet"
        ));
        return Ok(Exit::Ok);
    }
    say(format_args!(
        "{:<40} {:<7} {:>10} {:>8} {:>8} {:>8}",
        "NODE", "ROLE", "SEEN", "CLAIMED", "DONE", "HOLDING"
    ));
    for node in nodes {
        let ago = (now - node.seen_at).get_seconds();
        let seen = if ago > GONE_AFTER {
            format!("gone {}m", ago / 60)
        } else {
            format!("{ago}s ago")
        };
        say(format_args!(
            "{:<40} {:<7} {:>10} {:>8} {:>8} {:>8}",
            node.holder, node.role, seen, node.claimed, node.done, node.holding
        ));
    }
    Ok(Exit::Ok)
}
