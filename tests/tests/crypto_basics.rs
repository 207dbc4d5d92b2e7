//! crypto-basics.json: every case of all seven suites (RFC 9420 §5, §8, §9).
//! The checks are in `mls_tests::vectors::crypto_basics`. Also: the KEM
//! public keys of the wire that no DH can use are refused (RFC 9180 §7.1.4).
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn crypto_basics_vectors() {
    let cases = load("crypto-basics.json");
    let report = run_file(Kind::CryptoBasics, &cases);
    report.finish("crypto-basics.json", supported_cases(&cases));
    report.assert_passed_by_suite("crypto-basics.json", &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]);
}

/// `HpkePublicKey::for_suite`, through which every KEM public key of the
/// wire comes in (KeyPackages, leaves, trees, UpdatePaths, `external_pub`),
/// refuses keys no DH can use (RFC 9180 §7.1.4, RFC 7748 §6): for X25519
/// the points of small order (libsodium's list: 0, 1, two of order 8,
/// p - 1, p, p + 1) with bit 255 clear or set; for X448 0, 1, p - 1, p,
/// p + 1; for the NIST curves a point off the curve, a coordinate of p or
/// above, a form other than uncompressed. Each X25519 or X448 key refused
/// is one a seal fails on (the list checked against the DH), and a key
/// made by `derive_key_pair` passes in every suite.
#[test]
fn unusable_kem_public_keys_are_refused() {
    use mls_nostd::crypto::hpke::{HpkePublicKey, derive_key_pair, info_hash, seal_base};
    use mls_nostd::crypto::{CipherSuite, CryptoError};
    let le = |n: &str, len: usize| {
        let mut b = hex::decode(n).unwrap();
        b.resize(len, 0);
        b
    };
    // Little-endian, from RFC 7748's p.
    let x25519: Vec<Vec<u8>> = [
        "00",
        "01",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ]
    .iter()
    .flat_map(|n| {
        let u = le(n, 32);
        let mut high = u.clone();
        high[31] |= 0x80;
        [u, high]
    })
    .collect();
    let p448 = |first: &str, middle: &str, high: &str| {
        hex::decode([first, &"ff".repeat(27), middle, &high.repeat(27)].concat()).unwrap()
    };
    let x448: Vec<Vec<u8>> = vec![
        le("00", 56),
        le("01", 56),
        p448("fe", "fe", "ff"),
        p448("ff", "fe", "ff"),
        hex::decode(["00".repeat(28), "ff".repeat(28)].concat()).unwrap(),
    ];
    let mut seen = 0;
    for &suite in CipherSuite::ALL {
        let (_, pk) = derive_key_pair(suite, &[7; 32]).unwrap();
        let pk = pk.as_bytes().to_vec();
        assert!(HpkePublicKey::for_suite(suite, &pk).is_ok(), "{suite:?}");
        let bad: Vec<Vec<u8>> = match suite.kem().id() {
            0x0020 => x25519.clone(),
            0x0021 => x448.clone(),
            _ => {
                let n = (pk.len() - 1) / 2;
                let mut off_curve = pk.clone();
                *off_curve.last_mut().unwrap() ^= 1;
                let mut x_too_big = pk.clone();
                x_too_big[1..=n].fill(0xff);
                let mut compressed_tag = pk.clone();
                compressed_tag[0] = 0x02;
                let zero = [vec![0x04], vec![0; 2 * n]].concat();
                vec![off_curve, x_too_big, compressed_tag, zero, pk[..=n].to_vec(), vec![0]]
            }
        };
        for key in &bad {
            assert_eq!(HpkePublicKey::for_suite(suite, key), Err(CryptoError::InvalidKey), "{suite:?} {key:02x?}");
            // A key of small order of the right length: a seal to it fails.
            if matches!(suite.kem().id(), 0x0020 | 0x0021) {
                let info = info_hash(suite, &[b"info"]).unwrap();
                let mut buf = [0u8; 16];
                let pk = HpkePublicKey::from_slice(key).unwrap();
                let r = seal_base(suite, &pk, &info, &[], &mut buf, &[9; 32]).map(|_| ());
                assert_eq!(r, Err(CryptoError::InvalidSharedSecret), "{suite:?} {key:02x?}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 14 + 5 + 6, "every KEM family checked: {seen} keys");
}
