//! Collection and entity ids as the inspector prints them and reads them back. An id may
//! hold any character: printed raw, a NUL or an escape sequence garbles the terminal and a
//! newline splits a line, and a NUL cannot be typed on a command line at all. So ids are
//! printed escaped as Rust's `{:?}` writes strings (`\0`, `\n`, `\\`, `\"`, `\u{7}`), which
//! is also how record names in `verify`'s findings read, and arguments take the same
//! escapes, so that what `list` prints can be pasted back.

/// `id` escaped as `{:?}` does, without the quotes (for table cells).
pub(crate) fn escaped(id: &str) -> String {
    let quoted = format!("{id:?}");
    quoted
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

/// What an argument may hold after a backslash, for the error that names a wrong one.
const ESCAPES: &str = r#"\0 \n \r \t \\ \" \' \xHH (up to \x7f) \u{HHHH}"#;

/// An id typed as [`escaped`] prints it; also `\xHH` for an ASCII character. A backslash
/// that starts no escape is refused, not taken literally: written `\\`, it is never
/// ambiguous.
pub(crate) fn unescape(arg: &str) -> Result<String, String> {
    let mut id = String::with_capacity(arg.len());
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            id.push(c);
            continue;
        }
        let next = chars.next();
        let unescaped = match next {
            Some('0') => Some('\0'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some(same @ ('\\' | '"' | '\'')) => Some(same),
            Some('x') => {
                let digits: String = chars.by_ref().take(2).collect();
                hex(&digits, 2..=2)
                    .and_then(|code| u8::try_from(code).ok())
                    .filter(u8::is_ascii)
                    .map(char::from)
            }
            Some('u') => {
                let rest = chars.as_str();
                let code = rest
                    .strip_prefix('{')
                    .and_then(|rest| rest.split_once('}'))
                    .map(|(digits, after)| (digits, after.len()));
                match code {
                    Some((digits, after)) => {
                        let c = hex(digits, 1..=6).and_then(char::from_u32);
                        // Skip `{digits}` in the iterator (bytes are chars when
                        // they are hex digits; otherwise `c` is None and the
                        // argument is refused).
                        let skip = rest.len() - after;
                        chars.by_ref().take(skip).for_each(drop);
                        c
                    }
                    None => None,
                }
            }
            _ => None,
        };
        match (unescaped, next) {
            (Some(c), _) => id.push(c),
            (None, None) => {
                return Err(format!(
                    "it ends with a lone backslash (write a backslash as \\\\; escapes: {ESCAPES})"
                ));
            }
            (None, Some(n)) => {
                return Err(format!(
                    "`\\{n}` starts no valid escape (write a backslash as \\\\; escapes: {ESCAPES})"
                ));
            }
        }
    }
    Ok(id)
}

/// `digits` as a hex number, if they are `len` hex digits and nothing else (no sign).
fn hex(digits: &str, len: std::ops::RangeInclusive<usize>) -> Option<u32> {
    let only_digits = digits.chars().all(|c| c.is_ascii_hexdigit());
    if !only_digits || !len.contains(&digits.len()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests;
