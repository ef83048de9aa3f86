//! Text from outside (servers, backend programs) made safe to print on a terminal.

use std::borrow::Cow;

/// `text` with terminal control characters written as escapes (`\x1b`, `\r`, `\u{9b}`), so a
/// server's answer cannot move the cursor, recolour or retitle the user's terminal. Newlines
/// and tabs are kept: multi-line messages stay readable and cannot rewrite what is shown.
pub fn controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if is_escaped(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_escaped(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls and DEL, except newline and tab.
fn is_escaped(c: char) -> bool {
    c != '\n' && c != '\t' && c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_borrowed() {
        assert!(matches!(controls("plain é\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(
            controls("\u{1b}[2J\u{1b}]0;owned\u{7}x\ry\u{7f}\u{9b}31m"),
            "\\x1b[2J\\x1b]0;owned\\x07x\\ry\\x7f\\u{9b}31m"
        );
        assert_eq!(controls("line 1\nline\t2"), "line 1\nline\t2");
    }
}
