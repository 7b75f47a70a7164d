//! Native reference for benchmarks/bench_mls.py: the same MLS steps directly on OpenMLS, with the same
//! configuration as the binding (RustCrypto provider, ratchet tree extension, 5 past epochs).
//! Prints one JSON object of seconds per step. Usage: bench_native <members> <message reps> <updates>
use std::time::Instant;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::types::SignatureScheme;

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

struct Client {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

fn client(i: u32) -> Client {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[31] = 7;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
        .to_vec();
    let signer =
        SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public.clone());
    let credential = CredentialWithKey {
        credential: BasicCredential::new(public.clone()).into(),
        signature_key: public.into(),
    };
    Client {
        provider: OpenMlsRustCrypto::default(),
        signer,
        credential,
    }
}

fn key_package(c: &Client) -> Vec<u8> {
    KeyPackage::builder()
        .build(CS, &c.provider, &c.signer, c.credential.clone())
        .unwrap()
        .key_package()
        .tls_serialize_detached()
        .unwrap()
}

fn parse_kp(c: &Client, raw: &[u8]) -> KeyPackage {
    KeyPackageIn::tls_deserialize_exact(raw)
        .unwrap()
        .validate(c.provider.crypto(), ProtocolVersion::Mls10)
        .unwrap()
}

fn process(group: &mut MlsGroup, c: &Client, raw: &[u8]) -> Option<Vec<u8>> {
    let msg = MlsMessageIn::tls_deserialize_exact(raw)
        .unwrap()
        .try_into_protocol_message()
        .unwrap();
    match group
        .process_message(&c.provider, msg)
        .unwrap()
        .into_content()
    {
        ProcessedMessageContent::ApplicationMessage(app) => Some(app.into_bytes()),
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group.merge_staged_commit(&c.provider, *staged).unwrap();
            None
        }
        _ => None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let reps: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let updates: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let ratchet = SenderRatchetConfiguration::new(100, 1000);
    let create = MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(5)
        .sender_ratchet_configuration(ratchet)
        .build();
    let join = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(5)
        .sender_ratchet_configuration(ratchet)
        .build();

    let a = client(0);
    let b = client(1);
    let mut ga = MlsGroup::new_with_group_id(
        &a.provider,
        &a.signer,
        &create,
        GroupId::from_slice(b"bench"),
        a.credential.clone(),
    )
    .unwrap();
    let (_, welcome, _) = ga
        .add_members(&a.provider, &a.signer, &[parse_kp(&a, &key_package(&b))])
        .unwrap();
    ga.merge_pending_commit(&a.provider).unwrap();
    let welcome =
        MlsMessageIn::tls_deserialize_exact(welcome.tls_serialize_detached().unwrap()).unwrap();
    let welcome = match welcome.extract() {
        MlsMessageBodyIn::Welcome(w) => w,
        _ => unreachable!(),
    };
    let mut gb = StagedWelcome::new_from_welcome(&b.provider, &join, welcome, None)
        .unwrap()
        .into_group(&b.provider)
        .unwrap();

    let others: Vec<Client> = (2..n).map(client).collect();
    let kps: Vec<Vec<u8>> = others.iter().map(key_package).collect();

    let t = Instant::now();
    let parsed: Vec<KeyPackage> = kps.iter().map(|raw| parse_kp(&a, raw)).collect();
    let (commit, welcome, _) = ga.add_members(&a.provider, &a.signer, &parsed).unwrap();
    let commit = commit.tls_serialize_detached().unwrap();
    let welcome = welcome.tls_serialize_detached().unwrap();
    ga.merge_pending_commit(&a.provider).unwrap();
    let add_commit = t.elapsed().as_secs_f64();

    let t = Instant::now();
    process(&mut gb, &b, &commit);
    let process_add = t.elapsed().as_secs_f64();

    let joiner = &others[others.len() / 2];
    let t = Instant::now();
    let w = match MlsMessageIn::tls_deserialize_exact(&welcome)
        .unwrap()
        .extract()
    {
        MlsMessageBodyIn::Welcome(w) => w,
        _ => unreachable!(),
    };
    let _gj = StagedWelcome::new_from_welcome(&joiner.provider, &join, w, None)
        .unwrap()
        .into_group(&joiner.provider)
        .unwrap();
    let join_welcome = t.elapsed().as_secs_f64();

    // Adding one member to the n-member group (commit + welcome + merge), and processing that commit
    // on another member: the mean of `updates` additions.
    let (mut add_one, mut process_add_one) = (0.0, 0.0);
    for i in 0..updates {
        let raw = key_package(&client(n + i));
        let t = Instant::now();
        let kp = parse_kp(&a, &raw);
        let (commit, welcome, _) = ga.add_members(&a.provider, &a.signer, &[kp]).unwrap();
        let commit = commit.tls_serialize_detached().unwrap();
        let _welcome = welcome.tls_serialize_detached().unwrap();
        ga.merge_pending_commit(&a.provider).unwrap();
        add_one += t.elapsed().as_secs_f64() / updates as f64;

        let t = Instant::now();
        process(&mut gb, &b, &commit);
        process_add_one += t.elapsed().as_secs_f64() / updates as f64;
    }

    let (mut self_update, mut process_update) = (0.0, 0.0);
    for _ in 0..updates {
        let t = Instant::now();
        let bundle = ga
            .self_update(&a.provider, &a.signer, LeafNodeParameters::default())
            .unwrap();
        let update = bundle.commit().tls_serialize_detached().unwrap();
        ga.merge_pending_commit(&a.provider).unwrap();
        self_update += t.elapsed().as_secs_f64() / updates as f64;

        let t = Instant::now();
        process(&mut gb, &b, &update);
        process_update += t.elapsed().as_secs_f64() / updates as f64;
    }
    assert_eq!(
        ga.epoch_authenticator().as_slice(),
        gb.epoch_authenticator().as_slice()
    );

    let payload = vec![0x42u8; 1024];
    let t = Instant::now();
    for _ in 0..reps {
        let ct = ga
            .create_message(&a.provider, &a.signer, &payload)
            .unwrap()
            .tls_serialize_detached()
            .unwrap();
        let pt = process(&mut gb, &b, &ct).unwrap();
        assert_eq!(pt.len(), 1024);
    }
    let encrypt_decrypt = t.elapsed().as_secs_f64() / reps as f64;

    println!(
        "{{\"add_commit\": {add_commit}, \"process_add\": {process_add}, \"join_welcome\": {join_welcome}, \"add_one\": {add_one}, \"process_add_one\": {process_add_one}, \"self_update\": {self_update}, \"process_update\": {process_update}, \"encrypt_decrypt_1k\": {encrypt_decrypt}}}"
    );
}
