use super::{escaped, unescape};

#[test]
fn every_escaped_id_reads_back_as_itself() -> Result<(), String> {
    for id in [
        "plain",
        "odd\0coll\nname",
        "back\\slash\x07",
        "quote\"s and 'apostrophes'",
        "\r\t\u{1b}[31m",
        "\u{301}accent, é, \u{200b}",
    ] {
        assert_eq!(unescape(&escaped(id))?, id, "{id:?}");
    }
    Ok(())
}

#[test]
fn hex_escapes_are_ascii_only() -> Result<(), String> {
    assert_eq!(unescape(r"a\x07b\x41")?, "a\x07bA");
    for wrong in [
        r"\x80",
        r"\x7",
        r"\x+7",
        r"\u{+7}",
        r"\xzz",
        r"\u{}",
        r"\u{110000}",
        r"\u{7",
        r"\q",
        "end\\",
    ] {
        assert!(unescape(wrong).is_err(), "{wrong}");
    }
    Ok(())
}
