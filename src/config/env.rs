//! A snapshot of the settings' variables.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::{parse_duration, parse_duration_or_zero, ConfigError};

/// The variables farewatch reads, trimmed, with empty ones left out (an
/// empty `KEY=` in `.env` means unset). Flags are laid over it by name
/// ([`Env::set`]), so a flag beats the environment.
///
/// Values may be secrets, so `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// The process's environment (after `.env` was loaded into it).
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().filter_map(|(k, v)| {
            // Variables that are not UTF-8 are none of ours.
            Some((k.into_string().ok()?, v.into_string().ok()?))
        }))
    }

    /// Variables from `pairs` (tests, or a fleet's per-tenant settings).
    pub fn from_pairs<K: Into<String>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut env = Self::default();
        for (k, v) in pairs {
            env.set(k, v.as_ref());
        }
        env
    }

    /// Sets `name` (a flag given on the command line); an empty value unsets it.
    pub fn set(&mut self, name: impl Into<String>, value: &str) {
        let name = name.into();
        let value = value.trim();
        if value.is_empty() {
            self.vars.remove(&name);
        } else {
            self.vars.insert(name, value.to_owned());
        }
    }

    /// Sets `name` when `value` is given.
    pub fn set_opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.set(name, value);
        }
    }

    /// The trimmed, non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Whether `name` is set.
    pub fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// `name` as a secret (empty when unset).
    pub fn secret(&self, name: &str) -> SecretString {
        SecretString::from(self.get(name).unwrap_or_default().to_owned())
    }

    /// `name` parsed as `T`; `what` completes "`VALUE` is not ...".
    pub fn parse<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::invalid(name, format!("`{raw}` is not {what}"))),
        }
    }

    /// `name` as a duration longer than zero, or `default`.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.get(name)
            .map_or(Ok(default), |raw| parse_duration(name, raw))
    }

    /// `name` as a duration where zero means off, or `default`.
    pub fn duration_or_zero(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.get(name)
            .map_or(Ok(default), |raw| parse_duration_or_zero(name, raw))
    }

    /// A base URL: `name`, or `default`, without a trailing slash.
    pub fn base_url(&self, name: &str, default: &str) -> String {
        self.get(name)
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    }

    /// Every variable whose name starts with `prefix`: (name, value), sorted by name.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A comma-separated list of lower-case names (`FARE_SOURCES=serpapi, Duffel`).
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|list| {
            list.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_empty_means_unset_and_debug_hides_them() {
        let env = Env::from_pairs([
            ("A", " x "),
            ("B", "  "),
            ("SLACK_WEBHOOK_T", "https://h/s3cret"),
        ]);
        assert_eq!(env.get("A"), Some("x"));
        assert!(!env.has("B"));
        let shown = format!("{env:?}");
        assert!(
            shown.contains("SLACK_WEBHOOK_T") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn prefixes_and_lists() {
        let env = Env::from_pairs([
            ("SLACK_WEBHOOK_B", "1"),
            ("SLACK_WEBHOOK_A", "2"),
            ("SLACK_WEBHOOKS", "3"),
            ("SLACK", "4"),
            ("FARE_SOURCES", "SerpApi, ,duffel"),
        ]);
        let names: Vec<&str> = env.with_prefix("SLACK_WEBHOOK_").map(|(k, _)| k).collect();
        assert_eq!(names, ["SLACK_WEBHOOK_A", "SLACK_WEBHOOK_B"]);
        assert_eq!(env.list("FARE_SOURCES").unwrap(), ["serpapi", "duffel"]);
        let bad = env
            .parse::<u64>("FARE_SOURCES", "a whole number")
            .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "FARE_SOURCES: `SerpApi, ,duffel` is not a whole number"
        );
    }
}
