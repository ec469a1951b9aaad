//! Text that came from users or files, made safe to show: backup names, paths, header bytes and
//! agents' error texts reach terminals and log files, where a newline forges a line and an escape
//! sequence rewrites the screen. And I/O errors as plain sentences.

use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `bytes` as text: valid UTF-8 kept (accents and all); control characters written out the way
/// Python's `repr` writes them (`\n`, `\t`, `\r`, `\x1b`, `\x85`); characters that reorder or
/// hide text on a terminal as `\u202e`; bytes that are not UTF-8 as `\xff`. A backslash is not
/// doubled, so escaping twice changes nothing. `habackup._cli.output.clean` is the same rule for
/// the command line's own output.
pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    push_escaped(&mut out, bytes, false);
    out
}

/// [`escaped`] for text already in a `str`.
pub fn escape(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() || invisible(c)) {
        return text.to_string();
    }
    escaped(text.as_bytes())
}

/// [`escaped`] in double quotes, with `"` and `\` escaped too: for names inside a sentence.
pub fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    push_escaped(&mut out, bytes, true);
    out.push('"');
    out
}

/// A path for a message or a log line.
pub fn path(path: &Path) -> String {
    escaped(path.as_os_str().as_bytes())
}

fn push_escaped(out: &mut String, bytes: &[u8], quoting: bool) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '"' | '\\' if quoting => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c.is_control() || invisible(c)) && (c as u32) < 0x100 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || invisible(c) => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Formatting characters that reorder or hide text on a terminal (bidi overrides and isolates,
/// zero-width characters, line and paragraph separators, the byte-order mark).
fn invisible(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

/// An I/O error as people read it: the system's text without Rust's ` (os error N)` tail
/// (`Permission denied`, not `Permission denied (os error 13)`), escaped.
pub fn io_text(err: &std::io::Error) -> String {
    escape(&without_os_error(&err.to_string()))
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
    fn bytes_that_are_not_utf8_are_written_out() {
        assert_eq!(escaped(b"data/\xc3\xa9t\xc3\xa9.yaml"), "data/été.yaml");
        assert_eq!(escaped(b"bad\xff\xfe\x1b"), "bad\\xff\\xfe\\x1b");
        assert_eq!(quoted(b"say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(escaped(b"plain \\ path"), "plain \\ path");
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
