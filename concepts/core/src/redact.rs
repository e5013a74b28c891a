//! Keeping secrets out of messages: a URL's password and secret-looking query parameters
//! (`api_key=…`, `token=…`, `password=…`), wherever they appear in a text, and known secret
//! values. An HTTP client's error text carries the URL it called (a Last.fm API key travels as
//! `api_key`), a PostgreSQL URL may carry `password=`; every message that is logged, stored or
//! answered goes through these first.

/// What a secret query value or URL password is replaced with.
pub const HIDDEN: &str = "***";

/// Whether a query parameter (or `name=value` pair) of this name carries a secret.
pub fn is_secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    matches!(
        lower.as_str(),
        "password"
            | "pass"
            | "passwd"
            | "pwd"
            | "sslpassword"
            | "key"
            | "apikey"
            | "api_key"
            | "secret"
            | "sig"
            | "signature"
            | "auth"
            | "token"
    ) || ["token", "secret", "password", "api_key", "apikey"]
        .iter()
        .any(|s| lower.contains(s))
}

/// `url` with the password of its user info (`user:pass@`) and the values of its secret query
/// parameters replaced by [`HIDDEN`]. Anything that is not a URL comes back as it was.
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

/// `text` with every URL password (`scheme://user:pass@host`) and every value of a
/// secret-looking `name=value` pair (in a query string or free text) replaced by [`HIDDEN`].
pub fn redact_text(text: &str) -> String {
    redact_params(&redact_userinfo(text))
}

/// Hides the password of each `scheme://user:password@` in `text`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or a character no URL holds.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Hides the value of each `name=value` whose name [`is_secret_param`].
fn redact_params(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            i += 1;
            continue;
        }
        // The name before '=': letters, digits, '_', '-', '.'.
        let mut start = i;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || matches!(bytes[start - 1], b'_' | b'-' | b'.'))
        {
            start -= 1;
        }
        let name = &text[start..i];
        let mut end = i + 1;
        while end < bytes.len()
            && !matches!(
                bytes[end],
                b'&' | b' ' | b'\t' | b'\n' | b'\r' | b')' | b'"' | b'\'' | b',' | b';' | b'>' | b'#'
            )
        {
            end += 1;
        }
        if !name.is_empty() && end > i + 1 && is_secret_param(name) {
            out.push_str(&text[copied..=i]);
            out.push_str(HIDDEN);
            copied = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// `text` with each of `secrets` (values at least 4 bytes long; shorter ones would hide
/// ordinary words) replaced by `[redacted]`, then [`redact_text`].
pub fn redact_values<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if secret.len() >= 4 && out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    redact_text(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_and_secret_parameters() {
        assert_eq!(
            redact_url("postgres://lc:hunter2@db:5432/lc?sslmode=require"),
            "postgres://lc:***@db:5432/lc?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://lc@db/lc?password=hunter2&application_name=x"),
            "postgres://lc@db/lc?password=***&application_name=x"
        );
        assert_eq!(
            redact_url("postgresql:///lc?host=/tmp&PASSWORD=hunter2"),
            "postgresql:///lc?host=/tmp&PASSWORD=***"
        );
        assert_eq!(redact_url("/var/lib/librarycache"), "/var/lib/librarycache");
        assert_eq!(redact_url("postgres://db/lc"), "postgres://db/lc");
    }

    #[test]
    fn query_secrets_are_hidden_anywhere_in_a_message() {
        let reqwest_like = "error sending request for url (http://127.0.0.1:1/?method=user.getrecenttracks&user=rj&api_key=0123456789abcdef&format=json&page=2)";
        let shown = redact_text(reqwest_like);
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("api_key=***&format=json&page=2"), "{shown}");
        assert_eq!(
            redact_text("token=abc secret=def user=rj"),
            "token=*** secret=*** user=rj"
        );
        assert_eq!(redact_text("a = b, x==y"), "a = b, x==y");
        assert_eq!(redact_text("X-Plex-Token=abc"), "X-Plex-Token=***");
        assert_eq!(redact_text("monkey=banana"), "monkey=banana", "only whole names count");
    }

    #[test]
    fn known_values_are_hidden_wherever_they_appear() {
        let shown = redact_values("the server said: bad key 0123456789abcdef!", ["0123456789abcdef", "ab"]);
        assert_eq!(shown, "the server said: bad key [redacted]!");
    }
}
