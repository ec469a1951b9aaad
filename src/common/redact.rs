//! Keeps secrets out of messages: design §1 forbids credentials and signed URLs in any log line,
//! repr or error text, and agent errors (an HTTP client's, say) often quote the URL they failed on.

/// Drops the userinfo and the query string (where presigned URLs carry their signature) of every
/// URL in `message`.
pub fn redact_urls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("://") {
        out.push_str(&rest[..at + 3]);
        let tail = &rest[at + 3..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "'\"<>)]".contains(c))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        let (authority, path) = url.split_at(url.find('/').unwrap_or(url.len()));
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let (path, query) = match path.split_once('?') {
            Some((path, _)) => (path, true),
            None => match host.split_once('?') {
                Some(_) => ("", true),
                None => (path, false),
            },
        };
        out.push_str(host.split_once('?').map_or(host, |(h, _)| h));
        out.push_str(path);
        if query || authority.contains('@') {
            out.push_str("?<redacted>");
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn signatures_and_credentials_go() {
        let message = "403, message='Forbidden', url='https://bucket.s3.amazonaws.com/b/abc.tar?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA'";
        let redacted = redact_urls(message);
        assert!(!redacted.contains("deadbeef"), "{redacted}");
        assert!(!redacted.contains("AKIA"), "{redacted}");
        assert!(
            redacted.contains("https://bucket.s3.amazonaws.com/b/abc.tar?<redacted>'"),
            "{redacted}"
        );

        let redacted = redact_urls("cannot reach http://user:hunter2@nas.local:5005/backups now");
        assert_eq!(
            redacted,
            "cannot reach http://nas.local:5005/backups?<redacted> now"
        );

        assert_eq!(redact_urls("plain text, no url"), "plain text, no url");
        assert_eq!(
            redact_urls("see https://example.com/x"),
            "see https://example.com/x"
        );
    }
}
