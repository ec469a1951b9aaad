//! Makes names from disk or from an archive safe to print: log lines and error messages never
//! carry raw bytes (terminal escapes, newlines, bytes that are not UTF-8).

use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `bytes` as text: valid UTF-8 kept (accents and all), control and invisible formatting
/// characters as `\n`, `\t`, `\x1b`, `\u{202e}`, and bytes that are not UTF-8 as `\xff`.
pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    push_escaped(&mut out, bytes, false);
    out
}

/// `escaped` in double quotes, with `"` and `\` escaped too: for names inside a sentence.
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
                c if c.is_control() && (c as u32) < 0x80 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || invisible(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Formatting characters that reorder or hide text on a terminal (bidi overrides, zero-width
/// characters, line and paragraph separators).
fn invisible(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escaped(b"data/\xc3\xa9t\xc3\xa9.yaml"), "data/été.yaml");
        assert_eq!(escaped(b"a\nb\x1b[31mc\x7f"), "a\\nb\\x1b[31mc\\x7f");
        assert_eq!(escaped(b"bad\xff\xfe"), "bad\\xff\\xfe");
        assert_eq!(escaped("\u{202e}x\u{85}".as_bytes()), "\\u{202e}x\\u{85}");
        assert_eq!(quoted(b"say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(escaped(b"plain \\ path"), "plain \\ path");
    }
}
