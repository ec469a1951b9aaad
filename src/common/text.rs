//! Text that came from users or files, made safe to show: backup names, paths, header bytes and
//! agents' error texts reach terminals and log files, where a newline forges a line and an escape
//! sequence rewrites the screen.

/// `text` with every control character written out (`\n`, `\t`, `\r`, `\x1b`, `\x85`) and the
/// bidirectional overrides that reorder what a terminal shows (`\u202e`), the way Python's
/// `repr` writes them. Everything else, non-ASCII included, stays as it is; a backslash is not
/// doubled, so escaping twice changes nothing. `habackup._cli.output.clean` is the same rule for
/// the command line's own output.
pub fn escape(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Bytes of unknown encoding (a tar header's, a file name's): invalid UTF-8 becomes U+FFFD,
/// then [`escape`].
pub fn escape_bytes(bytes: &[u8]) -> String {
    escape(&String::from_utf8_lossy(bytes))
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An I/O error as people read it: the system's text without Rust's ` (os error N)` tail
/// (`Permission denied`, not `Permission denied (os error 13)`).
pub fn io_text(err: &std::io::Error) -> String {
    without_os_error(&err.to_string())
}

/// Drops every ` (os error N)` from a message (an error chain may quote several).
pub fn without_os_error(message: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let tail = &rest[at + MARK.len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..at + MARK.len()]);
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_out() {
        assert_eq!(
            escape("two\nlines\x1b[31mred\t\r\u{7f}\u{85}"),
            "two\\nlines\\x1b[31mred\\t\\r\\x7f\\x85"
        );
        assert_eq!(escape("abc\u{202e}cba"), "abc\\u202ecba");
        assert_eq!(escape("données/été.yaml ✓"), "données/été.yaml ✓");
        let once = escape("a\x1bb\\c");
        assert_eq!(escape(&once), once, "escaping twice changes nothing");
    }

    #[test]
    fn invalid_utf8_becomes_the_replacement_character() {
        assert_eq!(escape_bytes(b"ok\xff\x1b"), "ok\u{fffd}\\x1b");
    }

    #[test]
    fn os_error_tails_go() {
        let err = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_text(&err), "Permission denied");
        assert_eq!(
            without_os_error("a: No such file or directory (os error 2): b (os error 13)"),
            "a: No such file or directory: b"
        );
        assert_eq!(without_os_error("x (os error y)"), "x (os error y)");
        assert_eq!(without_os_error("plain"), "plain");
    }
}
