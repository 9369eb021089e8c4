//! Credentials out of URLs before they reach a message, a log or a report.
//!
//! Configured URLs carry secrets: a Redis password (`redis://:PASS@host`),
//! basic-auth credentials on a routes sheet link
//! (`https://user:PASS@host/routes.csv`), or a token in the query string
//! (`?token=…`, `?key=…`). [`redact_url`] is the one place that hides them;
//! [`scrub`] removes the same secrets from a third-party message (a Redis or
//! HTTP error) that might quote the URL.
//!
//! Both work on text, not on a parsed URL, because the URLs most likely to
//! be shown are the ones that do not parse. When in doubt they hide more.

/// Query (and fragment) parameters whose value is hidden, compared without
/// case. Names ending in `_key`, `-key`, `token`, `secret`, `password` or
/// `signature` are hidden too (`refresh_token`, `X-Amz-Signature`).
const SENSITIVE_PARAMS: &[&str] = &[
    "key",
    "apikey",
    "api_key",
    "token",
    "access_token",
    "auth",
    "secret",
    "client_secret",
    "pass",
    "password",
    "pwd",
    "sig",
    "signature",
];

/// What replaces a secret.
const HIDDEN: &str = "***";

/// Whether a query parameter named `name` carries a secret.
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_PARAMS.contains(&name.as_str())
        || ["_key", "-key", "token", "secret", "password", "signature"]
            .iter()
            .any(|end| name.ends_with(end))
}

/// A URL split where its secrets may be.
struct Parts<'u> {
    /// `scheme://`, or empty when the text has no `://`.
    head: &'u str,
    /// Everything before the last `@` of the authority, if there is one.
    userinfo: Option<&'u str>,
    /// Host, port and path.
    rest: &'u str,
    /// `?query` and `#fragment`, separator included; may be empty.
    tail: &'u str,
}

impl<'u> Parts<'u> {
    fn split(url: &'u str) -> Self {
        let (head, after) = match url.find("://") {
            Some(i) => url.split_at(i + 3),
            None => ("", url),
        };
        let (before_tail, tail) = after.split_at(after.find(['?', '#']).unwrap_or(after.len()));
        // The last `@` before the query: a password may hold an unencoded
        // `@` or `/`. A path with an `@` is hidden up to it (more, not less).
        let (userinfo, rest) = match before_tail.rfind('@') {
            Some(at) => (Some(&before_tail[..at]), &before_tail[at..]),
            None => (None, before_tail),
        };
        Self {
            head,
            userinfo,
            rest,
            tail,
        }
    }

    /// The user name when the user info is `user:password`; `None` when all
    /// of it is secret (`token@host`, or no `scheme://` to tell a user by).
    fn user(&self) -> Option<&'u str> {
        if self.head.is_empty() {
            return None;
        }
        self.userinfo?.split_once(':').map(|(user, _)| user)
    }

    /// The secret part of the user info, if any.
    fn password(&self) -> Option<&'u str> {
        let userinfo = self.userinfo?;
        match self.user() {
            Some(user) => Some(&userinfo[user.len() + 1..]),
            None => Some(userinfo),
        }
        .filter(|p| !p.is_empty())
    }

    /// `(name, value)` of every sensitive query or fragment parameter.
    fn sensitive_params(&self) -> impl Iterator<Item = (&'u str, &'u str)> {
        self.tail
            .split(['?', '#', '&', ';'])
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| is_sensitive(name))
    }
}

/// `url` with its credentials replaced by `***`, safe for messages and logs.
///
/// Hides the password of `scheme://user:password@host` (the user stays, to
/// tell accounts apart), all of a bare `scheme://secret@host` (a token used
/// as the user name), all of the user info of text without `://`, and the
/// value of every sensitive query or fragment parameter (`key`, `api_key`,
/// `token`, `access_token`, `secret`, `password`, `sig`, `signature` and
/// names ending in `_key`, `token`, `secret`, `password` or `signature`).
/// Host, port, path and other parameters stay, so the message still says
/// which URL is meant.
///
/// ```
/// use farewatch::redact::redact_url;
/// assert_eq!(
///     redact_url("https://me:hunter2@example.com/r.csv?gid=0&token=abc"),
///     "https://me:***@example.com/r.csv?gid=0&token=***"
/// );
/// assert_eq!(redact_url("redis//:hunter2@cache:6379"), "***@cache:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let parts = Parts::split(url);
    let mut out = String::with_capacity(url.len());
    out.push_str(parts.head);
    if parts.userinfo.is_some() {
        if let Some(user) = parts.user() {
            out.push_str(user);
            out.push(':');
        }
        out.push_str(HIDDEN);
    }
    out.push_str(parts.rest);
    // Rebuild the query keeping every separator; only values change.
    let mut tail = parts.tail;
    while let Some(i) = tail.find(['?', '#', '&', ';']) {
        out.push_str(&tail[..=i]);
        tail = &tail[i + 1..];
        let end = tail.find(['?', '#', '&', ';']).unwrap_or(tail.len());
        let pair = &tail[..end];
        match pair.split_once('=') {
            Some((name, _)) if is_sensitive(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(HIDDEN);
            }
            _ => out.push_str(pair),
        }
        tail = &tail[end..];
    }
    out.push_str(tail);
    out
}

/// `message` with every secret of `url` (as [`redact_url`] sees them, also
/// percent-decoded) replaced by `***`: for errors from libraries that might
/// quote the URL they were given.
pub fn scrub(message: &str, url: &str) -> String {
    let parts = Parts::split(url);
    let mut out = message.to_owned();
    // The whole URL first, so what is left is shown redacted, not cut up.
    if !url.is_empty() {
        out = out.replace(url, &redact_url(url));
    }
    let secrets = parts
        .password()
        .into_iter()
        .chain(parts.sensitive_params().map(|(_, value)| value))
        .filter(|s| !s.is_empty());
    for secret in secrets {
        out = out.replace(secret, HIDDEN);
        if let Ok(decoded) = percent_decode(secret) {
            if !decoded.is_empty() && decoded != secret {
                out = out.replace(&decoded, HIDDEN);
            }
        }
    }
    out
}

/// `%XX` escapes (and `+` as a space, as in a query) decoded; an error when
/// the result is not UTF-8 or an escape is broken.
fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).ok_or(())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_in_user_info() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:p%40ss@cache.example/"),
            "rediss://user:***@cache.example/"
        );
        assert_eq!(redact_url("redis://secret@host/"), "redis://***@host/");
        // An unencoded `@` or `/` in the password still does not leak.
        assert_eq!(redact_url("redis://:se/cr@t@host/"), "redis://:***@host/");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
    }

    #[test]
    fn hides_user_info_of_text_that_is_not_a_url() {
        assert_eq!(redact_url("redis//:secret@host"), "***@host");
        assert_eq!(redact_url("redis:user:secret@host"), "***@host");
        assert_eq!(redact_url("routes.csv"), "routes.csv");
    }

    #[test]
    fn hides_sensitive_query_and_fragment_parameters() {
        assert_eq!(
            redact_url("https://h/r.csv?gid=0&token=abc&key=def&output=csv"),
            "https://h/r.csv?gid=0&token=***&key=***&output=csv"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=secret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("https://h/x?API_KEY=a&access_token=b&X-Amz-Signature=c&sig=d#secret=e"),
            "https://h/x?API_KEY=***&access_token=***&X-Amz-Signature=***&sig=***#secret=***"
        );
        // An `@` in the query is not user info, and does not hide the token.
        assert_eq!(
            redact_url("https://h/x?to=me@example.com&token=abc"),
            "https://h/x?to=me@example.com&token=***"
        );
        assert_eq!(
            redact_url("https://u:pw@h/x?refresh_token=abc&keyword=ok"),
            "https://u:***@h/x?refresh_token=***&keyword=ok"
        );
    }

    #[test]
    fn scrub_removes_echoed_secrets() {
        assert_eq!(
            scrub("auth failed for hunter22", "redis://:hunter22@h/"),
            "auth failed for ***"
        );
        assert_eq!(scrub("refused", "redis://h/"), "refused");
        assert_eq!(
            scrub(
                "bad url redis//:hunter22@h, decoded p@ss",
                "redis//:hunter22@h?password=p%40ss"
            ),
            "bad url ***@h, decoded ***"
        );
        let url = "https://u:pw-x@h/r.csv?token=tok-y";
        assert_eq!(
            scrub(&format!("error sending request for url ({url})"), url),
            "error sending request for url (https://u:***@h/r.csv?token=***)"
        );
    }
}
