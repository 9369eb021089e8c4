//! `farewatch fleet`: the daemons sharing this state database, and the
//! routes due.

use anyhow::Result;
use farewatch::store::Store;
use jiff::Timestamp;

use crate::{config_error, say, Exit};

/// A node not seen for this long is shown as gone (its claims run out).
const GONE_AFTER: i64 = 15 * 60;

/// Runs `farewatch fleet`.
pub async fn run(database_url: Option<&str>) -> Result<Exit> {
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
