//! Runs the key schedule of a fresh group through a few epochs with OS
//! randomness and prints what each epoch derives (RFC 9420 §8, §9): the
//! epoch authenticator, an exported secret, and the first application key of
//! a sender. A placeholder main job until the full group API lands.
use mls_nostd::codec::Encode;
use mls_nostd::crypto::{CipherSuite, Secret};
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_schedule::{joiner_secret, EpochSecrets};
use mls_nostd::psk::{psk_secret, PreSharedKeyId, Psk};
use mls_nostd::secret_tree::{RatchetKind, SecretTree, SecretTreeConfig};
use mls_nostd::transcript;
use mls_nostd::tree_math::LeafIndex;
use rand_core::Rng;
use std::process::ExitCode;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn random_secret(rng: &mut impl Rng, len: usize) -> Secret {
    let mut s = Secret::zero(len).expect("hash length");
    rng.fill_bytes(s.as_mut_bytes());
    s
}

fn run(suite: CipherSuite, epochs: u64) -> Result<(), String> {
    let mut rng = platform_std::os_rng();
    let nh = suite.hash_len();
    let mut group_id = [0u8; 16];
    rng.fill_bytes(&mut group_id);
    println!("cipher suite 0x{:04x}, group {}", suite.to_u16(), hex(&group_id));

    let mut init = Secret::zero(nh).map_err(|e| e.to_string())?;
    let mut interim = Vec::new();
    let mut confirmed = Vec::new();
    let tree_hash = [0u8; 32];
    for epoch in 0..epochs {
        let gc = GroupContext {
            cipher_suite: suite,
            group_id: &group_id,
            epoch,
            tree_hash: &tree_hash,
            confirmed_transcript_hash: &confirmed,
            extensions: &[],
        };
        let mut buf = [0u8; 256];
        let gc = gc.encode_to(&mut buf).map_err(|e| e.to_string())?;

        let commit_secret = random_secret(&mut rng, nh);
        // Every other epoch injects an external PSK.
        let psk = random_secret(&mut rng, nh);
        let nonce = random_secret(&mut rng, nh);
        let ids = [(PreSharedKeyId { psk: Psk::External { psk_id: b"demo-psk" }, psk_nonce: nonce.as_bytes() }, psk.as_bytes())];
        let psks = if epoch % 2 == 1 { &ids[..] } else { &[] };
        let psk_secret = psk_secret(suite, psks).map_err(|e| e.to_string())?;

        let joiner = joiner_secret(suite, &init, &commit_secret, gc).map_err(|e| e.to_string())?;
        let secrets = EpochSecrets::derive(suite, &joiner, &psk_secret, gc).map_err(|e| e.to_string())?;
        let mut exported = [0u8; 16];
        secrets.export(suite, b"demo", b"context", &mut exported).map_err(|e| e.to_string())?;

        let mut tree = Box::new(
            SecretTree::<8, 16>::new(suite, 8, &secrets.encryption_secret, SecretTreeConfig::default())
                .map_err(|e| e.to_string())?,
        );
        let key = tree.next_sending_key(LeafIndex(3), RatchetKind::Application).map_err(|e| e.to_string())?;

        println!(
            "epoch {epoch}: psks {}  epoch_authenticator {}  exporter(\"demo\") {}  leaf 3 app key[{}] {}",
            psks.len(),
            hex(secrets.epoch_authenticator.as_bytes()),
            hex(&exported),
            key.generation,
            hex(key.key.as_bytes()),
        );

        // Next epoch's transcript: a stand-in commit (random bytes) confirmed with this epoch's key.
        let mut fake_commit = [0u8; 64];
        rng.fill_bytes(&mut fake_commit);
        let c = transcript::confirmed_transcript_hash(suite, &interim, &[&fake_commit]);
        let tag = transcript::confirmation_tag(suite, &secrets.confirmation_key, c.as_bytes());
        interim = transcript::interim_transcript_hash(suite, c.as_bytes(), tag.as_bytes())
            .map_err(|e| e.to_string())?
            .as_bytes()
            .to_vec();
        confirmed = c.as_bytes().to_vec();
        init = secrets.init_secret.clone();
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut epochs = 4u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.as_str(), value.as_deref()) {
            ("--suite", Some("1")) => suite = CipherSuite::X25519Aes128GcmSha256Ed25519,
            ("--suite", Some("3")) => suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
            ("--epochs", Some(n)) if n.parse::<u64>().is_ok() => epochs = n.parse().unwrap_or(epochs),
            _ => {
                eprintln!("error: usage: mls-epochs [--suite 1|3] [--epochs N]");
                return ExitCode::from(2);
            }
        }
    }
    match run(suite, epochs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
