//! `--watch` (`"watch": true` in the API): a completed job becomes a
//! standing fare watch on its cheapest combination.
//!
//! The watch is an ordinary API watch of the job's owner, made by the rules
//! of `POST /users/{email}/watches` (so it is validated as a routes.csv row
//! is, and runs in every `check`/`daemon` cycle with the usual rule
//! semantics: one alert per drop). Its maximum price is one minor unit below
//! the cheapest fare the job found, so it alerts when the price falls below
//! what the search saw, not at once for the same price. Its phone is the
//! owner's. A job without an owner (from the CLI without `--user`), or
//! without any fare, gets no watch: a worker logs why, and `farewatch
//! search` prints it.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::run::OnComplete;
use crate::store::jobs::{JobRecord, ResultOrder};
use crate::store::{ApiWatch, Store, User};

/// Makes the standing watch of every completed job that asks for one.
#[derive(Debug, Clone)]
pub struct MakeWatch {
    store: Store,
}

impl MakeWatch {
    /// Watches go to `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl OnComplete for MakeWatch {
    async fn completed(&self, job: &JobRecord) {
        match make_watch(&self.store, job).await {
            Ok(Some(watch)) => {
                tracing::info!(job = %job.id, watch = watch.id, "standing watch created");
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(job = %job.id, "no standing watch: {error}"),
        }
    }
}

/// The owner of `job`, if it has one and it still exists.
async fn owner(store: &Store, job: &JobRecord) -> Result<Option<User>, String> {
    let Some(id) = job.owner_id else {
        return Ok(None);
    };
    // Users are listed in id order: the first after `id - 1` is `id`, if it exists.
    let users = store
        .list_users(id - 1, 1)
        .await
        .map_err(|e| e.to_string())?;
    Ok(users.into_iter().find(|u| u.id == id))
}

/// Makes `job`'s standing watch if it asks for one and has none yet;
/// the watch made.
pub async fn make_watch(store: &Store, job: &JobRecord) -> Result<Option<ApiWatch>, String> {
    if !job.watch || job.watch_id.is_some() {
        return Ok(None);
    }
    let Some(user) = owner(store, job).await? else {
        return Err("the job has no owner to alert (give `farewatch search --user EMAIL`)".into());
    };
    let cheapest = store
        .job_results(&job.id, ResultOrder::Price, 0, 1)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|r| r.price.is_some());
    let Some((result, price)) = cheapest.and_then(|r| r.price.map(|p| (r, p))) else {
        return Err("the search found no fare to watch".into());
    };
    let below = crate::domain::Money::from_minor(price.minor - 1, price.currency);
    let mut fields = Map::new();
    let mut put = |name: &str, value: String| {
        fields.insert(name.to_owned(), Value::String(value));
    };
    put("kind", "fare".into());
    put("origin", result.origin.clone());
    put("destination", result.destination.clone());
    put("depart_date", result.depart.to_string());
    if let Some(back) = result.return_date {
        put("return_date", back.to_string());
    }
    put("max_price", below.amount_string());
    put("currency", price.currency.as_str().to_owned());
    if let Some(adults) = super::run::stored_request(job).ok().map(|r| r.adults) {
        put("adults", adults.to_string());
    }
    put("label", format!("search {}", job.id));
    let watch = crate::api::watches::add_watch(store, &user, fields)
        .await
        .map_err(|e| {
            let fields: Vec<String> = e
                .body
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            if fields.is_empty() {
                e.body.message
            } else {
                fields.join("; ")
            }
        })?;
    store
        .set_job_watch(&job.id, watch.id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(watch))
}
