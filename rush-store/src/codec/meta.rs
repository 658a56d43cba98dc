//! An event's meta block (type name, schema version, tags, metadata), in front of its
//! payload in the plain body: the bincode struct of format version 2, behind a length, and
//! the compact layout of version 3, which spends one byte on the fields an event leaves
//! empty instead of one byte each (FORMAT.md, "Event meta").

use super::{MAX_META_SIZE, bincode_config, deserialize_exact};
use crate::metadata::{EventMetadata, RecordMeta};
use crate::varint;

/// What replay needs of a meta block: the type name and the schema version, for upcasting.
pub(crate) struct MetaHead<'a> {
    pub(crate) event_type: &'a str,
    pub(crate) schema_version: u32,
}

/// Version 2: `[meta len u32][meta][payload]` -> (meta bytes, payload), the length checked.
fn meta_block_v2(body: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (len, rest) = body
        .split_first_chunk::<4>()
        .ok_or_else(|| "event body shorter than its meta length".to_owned())?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > MAX_META_SIZE || len > rest.len() {
        return Err(format!("meta length {len} exceeds the body"));
    }
    Ok(rest.split_at(len))
}

/// Version 2: `[meta len u32][meta][payload]` -> (meta, payload).
pub(crate) fn split_v2(body: &[u8]) -> Result<(RecordMeta, &[u8]), String> {
    let (meta, payload) = meta_block_v2(body)?;
    let meta = deserialize_exact(meta).map_err(|e| format!("meta block: {e}"))?;
    Ok((meta, payload))
}

/// The leading fields of a version-2 meta block, borrowed; the rest is not decoded.
#[derive(serde::Deserialize)]
struct HeadV2<'a> {
    #[serde(borrow)]
    event_type: &'a str,
    schema_version: u32,
}

/// [`split_v2`] for replay: the type name and schema version, and the payload.
pub(crate) fn split_head_v2(body: &[u8]) -> Result<(MetaHead<'_>, &[u8]), String> {
    let (meta, payload) = meta_block_v2(body)?;
    let (head, _): (HeadV2<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(meta, bincode_config())
            .map_err(|e| format!("meta block: {e}"))?;
    Ok((
        MetaHead {
            event_type: head.event_type,
            schema_version: head.schema_version,
        },
        payload,
    ))
}

/// Bits of the version-3 `fields` byte: which of the optional fields follow.
const HAS_TAGS: u8 = 1;
const HAS_CORRELATION: u8 = 1 << 1;
const HAS_CAUSATION: u8 = 1 << 2;
const HAS_USER: u8 = 1 << 3;
const HAS_TENANT: u8 = 1 << 4;
const KNOWN_FIELDS: u8 = HAS_TAGS | HAS_CORRELATION | HAS_CAUSATION | HAS_USER | HAS_TENANT;

/// Appends `meta` in the version-3 layout:
/// `[type len varint][type][schema version varint][fields u8]`, then, as `fields` says,
/// `[tag count varint]([len varint][tag])*` and each of correlation, causation, user and
/// tenant id as `[len varint][id]`. Returns the meta block's length.
pub(crate) fn encode_v3(meta: &RecordMeta, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    put_str(out, &meta.event_type);
    varint::put(out, u64::from(meta.schema_version));
    let ids = ids(&meta.metadata);
    let mut fields = if meta.tags.is_empty() { 0 } else { HAS_TAGS };
    for (bit, id) in ids {
        if id.is_some() {
            fields |= bit;
        }
    }
    out.push(fields);
    if !meta.tags.is_empty() {
        varint::put(out, meta.tags.len() as u64);
        for tag in &meta.tags {
            put_str(out, tag);
        }
    }
    for id in ids.iter().filter_map(|(_, id)| *id) {
        put_str(out, id);
    }
    out.len() - start
}

fn ids(metadata: &EventMetadata) -> [(u8, Option<&str>); 4] {
    [
        (HAS_CORRELATION, metadata.correlation_id.as_deref()),
        (HAS_CAUSATION, metadata.causation_id.as_deref()),
        (HAS_USER, metadata.user_id.as_deref()),
        (HAS_TENANT, metadata.tenant_id.as_deref()),
    ]
}

/// Version 3: `[meta][payload]` -> (meta, payload).
pub(crate) fn split_v3(body: &[u8]) -> Result<(RecordMeta, &[u8]), String> {
    let mut reader = Reader(body);
    let head = reader.head()?;
    let fields = reader.fields()?;
    let mut tags = Vec::new();
    if fields & HAS_TAGS != 0 {
        let count = reader.varint()?;
        for _ in 0..count {
            tags.push(reader.str()?.to_owned());
        }
    }
    let mut id = |bit: u8| -> Result<Option<String>, String> {
        if fields & bit == 0 {
            Ok(None)
        } else {
            reader.str().map(|id| Some(id.to_owned()))
        }
    };
    let metadata = EventMetadata {
        correlation_id: id(HAS_CORRELATION)?,
        causation_id: id(HAS_CAUSATION)?,
        user_id: id(HAS_USER)?,
        tenant_id: id(HAS_TENANT)?,
    };
    let meta = RecordMeta {
        event_type: head.event_type.to_owned(),
        schema_version: head.schema_version,
        tags,
        metadata,
    };
    Ok((meta, reader.0))
}

/// [`split_v3`] for replay: the type name and schema version, borrowed, and the payload
/// (the tags and ids are stepped over, not copied).
pub(crate) fn split_head_v3(body: &[u8]) -> Result<(MetaHead<'_>, &[u8]), String> {
    let mut reader = Reader(body);
    let head = reader.head()?;
    let fields = reader.fields()?;
    if fields & HAS_TAGS != 0 {
        let count = reader.varint()?;
        for _ in 0..count {
            reader.str()?;
        }
    }
    for bit in [HAS_CORRELATION, HAS_CAUSATION, HAS_USER, HAS_TENANT] {
        if fields & bit != 0 {
            reader.str()?;
        }
    }
    Ok((head, reader.0))
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    varint::put(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// The unread rest of a version-3 meta block and its payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let (taken, rest) = self
            .0
            .split_at_checked(len)
            .ok_or_else(|| format!("meta block: a field of {len} bytes passes the body's end"))?;
        self.0 = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, String> {
        let [byte] = *self.take(1)? else {
            return Err("meta block: cut short".into());
        };
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, String> {
        varint::take(&mut self.0)
            .ok_or_else(|| "meta block: a length or version cut short or malformed".to_owned())
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let len = usize::try_from(self.varint()?)
            .map_err(|_| "meta block: a length passes the body's end".to_owned())?;
        std::str::from_utf8(self.take(len)?).map_err(|_| "meta block: text is not UTF-8".into())
    }

    fn head(&mut self) -> Result<MetaHead<'a>, String> {
        let event_type = self.str()?;
        let schema_version = u32::try_from(self.varint()?)
            .map_err(|_| "meta block: schema version beyond u32".to_owned())?;
        Ok(MetaHead {
            event_type,
            schema_version,
        })
    }

    fn fields(&mut self) -> Result<u8, String> {
        let fields = self.byte()?;
        if fields & !KNOWN_FIELDS != 0 {
            return Err(format!("meta block: unknown fields {fields:#04x}"));
        }
        Ok(fields)
    }
}
