//! bincode 2's standard varint, the integers of the compact layouts of FORMAT.md (log
//! blocks v2, event meta v3): a value below 251 is one byte; else a marker 251, 252 or 253
//! followed by the value as a little-endian u16, u32 or u64. Only the shortest form is
//! written and read.

/// The varint's markers of a little-endian u16, u32 and u64 that follow.
const VARINT_U16: u8 = 251;
const VARINT_U32: u8 = 252;
const VARINT_U64: u8 = 253;

/// Appends `value` in its shortest form.
pub(crate) fn put(out: &mut Vec<u8>, value: u64) {
    if let Ok(byte) = u8::try_from(value)
        && byte < VARINT_U16
    {
        out.push(byte);
    } else if let Ok(value) = u16::try_from(value) {
        out.push(VARINT_U16);
        out.extend_from_slice(&value.to_le_bytes());
    } else if let Ok(value) = u32::try_from(value) {
        out.push(VARINT_U32);
        out.extend_from_slice(&value.to_le_bytes());
    } else {
        out.push(VARINT_U64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Takes a varint off the front of `rest`; `None` when it is cut short, not minimal, or
/// has a marker other than 251-253.
pub(crate) fn take(rest: &mut &[u8]) -> Option<u64> {
    let (&first, after) = rest.split_first()?;
    let (value, after) = match first {
        VARINT_U16 => {
            let (bytes, after) = after.split_first_chunk::<2>()?;
            let value = u16::from_le_bytes(*bytes);
            (value >= u16::from(VARINT_U16)).then_some((u64::from(value), after))?
        }
        VARINT_U32 => {
            let (bytes, after) = after.split_first_chunk::<4>()?;
            let value = u32::from_le_bytes(*bytes);
            (value > u32::from(u16::MAX)).then_some((u64::from(value), after))?
        }
        VARINT_U64 => {
            let (bytes, after) = after.split_first_chunk::<8>()?;
            let value = u64::from_le_bytes(*bytes);
            (value > u64::from(u32::MAX)).then_some((value, after))?
        }
        byte if byte < VARINT_U16 => (u64::from(byte), after),
        _ => return None,
    };
    *rest = after;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_bincodes_standard_ones_and_only_the_minimal_form_is_read() {
        for (value, len) in [
            (0, 1),
            (250, 1),
            (251, 3),
            (u64::from(u16::MAX), 3),
            (u64::from(u16::MAX) + 1, 5),
            (u64::from(u32::MAX), 5),
            (u64::from(u32::MAX) + 1, 9),
            (u64::MAX, 9),
        ] {
            let mut bytes = Vec::new();
            put(&mut bytes, value);
            assert_eq!(bytes.len(), len, "{value}");
            let standard = bincode::encode_to_vec(value, bincode::config::standard()).unwrap();
            assert_eq!(bytes, standard, "{value}");
            let mut rest = &bytes[..];
            assert_eq!(take(&mut rest), Some(value));
            assert!(rest.is_empty());
            let mut cut = &bytes[..len - 1];
            assert_eq!(take(&mut cut), None, "{value} cut short");
        }
        for non_minimal in [
            &[251, 250, 0][..],
            &[252, 0xff, 0xff, 0, 0],
            &[253, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            &[254, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[255],
        ] {
            let mut rest = non_minimal;
            assert_eq!(take(&mut rest), None, "{non_minimal:?}");
        }
    }
}
