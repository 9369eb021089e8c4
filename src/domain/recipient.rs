use std::fmt;

use super::E164;

/// Kinds of named channel a sheet row can send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// A Slack incoming webhook.
    Slack,
    /// A Discord webhook.
    Discord,
    /// A generic JSON webhook, signed with HMAC-SHA256.
    Webhook,
}

impl ChannelKind {
    /// The prefix used in the sheet (`slack`, `discord`, `webhook`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Webhook => "webhook",
        }
    }
}

/// Whom an alert goes to: a phone number (SMS) or a named channel
/// configured in the environment (`slack:team` -> `SLACK_WEBHOOK_TEAM`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// An SMS recipient.
    Phone(E164),
    /// A named channel.
    Channel {
        /// Slack, Discord or a generic webhook.
        kind: ChannelKind,
        /// The channel's name: lower-case letters, digits, `_` and `-`.
        name: String,
    },
}

/// Longest channel name accepted: it becomes part of an environment variable name.
const MAX_CHANNEL_NAME: usize = 32;

impl Recipient {
    /// Parses `+447911123456` or `slack:team` / `discord:ops` / `webhook:crm`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.starts_with('+') {
            return E164::parse(trimmed).map(Self::Phone);
        }
        let Some((kind, name)) = trimmed.split_once(':') else {
            // Most likely a number without its country code.
            return E164::parse(trimmed).map(Self::Phone);
        };
        let kind = match kind.trim().to_ascii_lowercase().as_str() {
            "slack" => ChannelKind::Slack,
            "discord" => ChannelKind::Discord,
            "webhook" => ChannelKind::Webhook,
            _ => {
                return Err(format!(
                    "`{trimmed}` is not a recipient; expected an E.164 number like +447911123456 or a channel like slack:team, discord:ops or webhook:crm"
                ))
            }
        };
        let name = name.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= MAX_CHANNEL_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!(
                "`{trimmed}` has an invalid channel name; expected up to {MAX_CHANNEL_NAME} letters, digits, _ or -, like {}:team",
                kind.as_str()
            ));
        }
        Ok(Self::Channel { kind, name })
    }

    /// The phone number, for an SMS recipient.
    pub fn phone(&self) -> Option<&E164> {
        match self {
            Self::Phone(phone) => Some(phone),
            Self::Channel { .. } => None,
        }
    }

    /// The environment variable holding a channel's URL
    /// (`SLACK_WEBHOOK_TEAM`, `DISCORD_WEBHOOK_OPS`, `WEBHOOK_URL_CRM`).
    pub fn channel_env_var(&self) -> Option<String> {
        match self {
            Self::Phone(_) => None,
            Self::Channel { kind, name } => {
                let suffix = name.to_ascii_uppercase().replace('-', "_");
                Some(match kind {
                    ChannelKind::Slack => format!("SLACK_WEBHOOK_{suffix}"),
                    ChannelKind::Discord => format!("DISCORD_WEBHOOK_{suffix}"),
                    ChannelKind::Webhook => format!("WEBHOOK_URL_{suffix}"),
                })
            }
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Phone(phone) => f.write_str(phone.as_str()),
            Self::Channel { kind, name } => write!(f, "{}:{name}", kind.as_str()),
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_channels() {
        let phone = Recipient::parse(" +44 7911 123456 ").unwrap();
        assert_eq!(phone.to_string(), "+447911123456");
        assert!(phone.phone().is_some());
        let slack = Recipient::parse("Slack:Team-1").unwrap();
        assert_eq!(slack.to_string(), "slack:team-1");
        assert_eq!(
            slack.channel_env_var().as_deref(),
            Some("SLACK_WEBHOOK_TEAM_1")
        );
        assert_eq!(
            Recipient::parse("webhook:crm")
                .unwrap()
                .channel_env_var()
                .as_deref(),
            Some("WEBHOOK_URL_CRM")
        );
        assert!(Recipient::parse("teams:x")
            .unwrap_err()
            .contains("slack:team"));
        assert!(Recipient::parse("slack:").is_err());
        assert!(Recipient::parse("slack:a b").is_err());
        assert!(Recipient::parse("07911123456")
            .unwrap_err()
            .contains("E.164"));
    }
}
