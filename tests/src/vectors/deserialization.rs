//! deserialization.json (RFC 9420 §2.1.2): every variable-length vector
//! header decodes to its length, and our writer produces the same header.
use super::{CaseOutcome, CaseResult, Context, Stats, ensure, ensure_bytes, ensure_eq, hex_field, u64_field};
use mls_nostd::codec::{Reader, Writer};
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let header = hex_field(case, "vlbytes_header")?;
    let length = usize::try_from(u64_field(case, "length")?).ctx("length")?;
    let mut r = Reader::new(&header);
    ensure_eq!(r.read_varint().ctx("read_varint")? as usize, length, "decoded length");
    ensure!(r.is_empty(), "header has trailing bytes");
    // Our writer produces the same (minimal) header.
    let mut buf = [0u8; 4];
    let mut w = Writer::new(&mut buf);
    w.write_varint(length).ctx("write_varint")?;
    ensure_bytes!(w.written(), header, "our header");
    Ok(CaseOutcome::Ran(Stats::default()))
}
