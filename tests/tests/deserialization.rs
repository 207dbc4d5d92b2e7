//! deserialization.json: every variable-length vector header (RFC 9420 §2.1.2).
use mls_nostd::codec::{Reader, Writer};
use mls_tests::{hex, load, uint};

#[test]
fn vlbytes_headers() {
    let cases = load("deserialization.json");
    let mut ran = 0;
    for case in &cases {
        let header = hex(&case["vlbytes_header"]);
        let length = uint(&case["length"]) as usize;
        let mut r = Reader::new(&header);
        assert_eq!(r.read_varint().unwrap() as usize, length);
        assert!(r.is_empty(), "header has trailing bytes");
        // Our writer produces the same (minimal) header.
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.write_varint(length).unwrap();
        assert_eq!(w.written(), &header[..]);
        ran += 1;
    }
    println!("deserialization.json: {ran} cases ran");
    assert_eq!(ran, 14);
    assert_eq!(ran, cases.len());
}
