//! Differential harness against p2panda-rs 0.8.1 (test-only; see tests/interop/test_reference.py).
//!
//!   p2panda-reference-diff gen SEED COUNT   random cases made by the reference, as JSON lines
//!   p2panda-reference-diff verify           JSON lines on stdin (made by us) -> what the reference makes of them
//!
//! Case kinds: "entry" (signed entries with every link shape), "operation" (every field type, NaN and
//! i64 extremes, validated against a random schema) and "document" (concurrent writers, merges,
//! deletes, older views, a few previous lists naming an ancestor of another item).

mod describe;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Write};

use p2panda_rs::document::DocumentViewId;
use p2panda_rs::entry::encode::{encode_entry, sign_entry};
use p2panda_rs::entry::traits::AsEncodedEntry;
use p2panda_rs::entry::{LogId, SeqNum};
use p2panda_rs::hash::Hash;
use p2panda_rs::identity::KeyPair;
use p2panda_rs::operation::encode::encode_operation;
use p2panda_rs::operation::{
    EncodedOperation, OperationAction, OperationBuilder, OperationId, OperationValue,
    PinnedRelation, PinnedRelationList, Relation, RelationList,
};
use p2panda_rs::schema::SchemaId;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use describe::{describe_document, describe_entry, describe_operation, hash_hex};

const TYPES: [&str; 9] = [
    "bool",
    "int",
    "float",
    "str",
    "bytes",
    "relation",
    "relation_list",
    "pinned_relation",
    "pinned_relation_list",
];

fn skiplink_required(seq_num: u64) -> bool {
    let seq = SeqNum::new(seq_num).unwrap();
    seq_num > 1 && seq.skiplink_seq_num() != seq.backlink_seq_num()
}

fn random_hash(rng: &mut ChaCha8Rng) -> Hash {
    let mut data = [0u8; 16];
    rng.fill_bytes(&mut data);
    Hash::new_from_bytes(&data)
}

fn random_view(rng: &mut ChaCha8Rng, max: usize) -> DocumentViewId {
    let n = rng.gen_range(1..=max);
    let ids: Vec<OperationId> = (0..n).map(|_| random_hash(rng).into()).collect();
    DocumentViewId::new(&ids)
}

fn random_key_pair(rng: &mut ChaCha8Rng) -> (KeyPair, String) {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let private = hex::encode(seed);
    (
        KeyPair::from_private_key_str(&private).expect("32 bytes are a private key"),
        private,
    )
}

fn random_name(rng: &mut ChaCha8Rng, max: usize) -> String {
    let first = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let rest = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let len = rng.gen_range(1..=max);
    let mut name = String::new();
    name.push(*first.choose(rng).unwrap() as char);
    for _ in 1..len {
        name.push(*rest.choose(rng).unwrap() as char);
    }
    name
}

fn random_schema_id(rng: &mut ChaCha8Rng) -> SchemaId {
    let mut name = random_name(rng, 12);
    while name.ends_with('_') || name.len() < 2 {
        name.push('x');
    }
    let view = random_view(rng, 2);
    SchemaId::new(&format!("{}_{}", name, view.to_string())).expect("a valid schema id")
}

fn random_float(rng: &mut ChaCha8Rng) -> f64 {
    let sign = if rng.gen_bool(0.5) { 1u64 << 63 } else { 0 };
    let exp = 0x7ffu64 << 52;
    let quiet = 1u64 << 51;
    match rng.gen_range(0..14) {
        // NaNs: the plain one, payloads that fit f16, f32, only f64; signalling ones
        0 => f64::from_bits(sign | exp | quiet),
        1 => f64::from_bits(sign | exp | quiet | ((rng.gen::<u64>() & 0x1ff) << 42)),
        2 => f64::from_bits(sign | exp | quiet | ((rng.gen::<u64>() & 0x3f_ffff) << 29)),
        3 => f64::from_bits(sign | exp | quiet | (rng.gen::<u64>() & 0x7_ffff_ffff_ffff).max(1)),
        4 => f64::from_bits(sign | exp | ((rng.gen::<u64>() & 0x7_ffff_ffff_ffff) | 1)),
        5 => [
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
        ][rng.gen_range(0..7)],
        6 => f64::from_bits(sign | (rng.gen::<u64>() & 0xf_ffff_ffff_ffff)), // subnormal
        7 => (rng.gen_range(-2048i32..2048) as f64) / 8.0,                   // f16-exact
        8 => rng.gen::<f32>() as f64 * 1e6,                                  // f32-exact
        9 => f64::from(half_exact(rng)),
        _ => f64::from_bits(rng.gen::<u64>()),
    }
}

fn half_exact(rng: &mut ChaCha8Rng) -> f32 {
    // values with at most 11 significant bits, across f16's exponent range
    let mantissa = rng.gen_range(0..2048) as f32;
    mantissa * 2f32.powi(rng.gen_range(-24..6))
}

fn random_int(rng: &mut ChaCha8Rng) -> i64 {
    let edges = [
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        i64::MAX - 1,
        0,
        -1,
        23,
        24,
        -24,
        -25,
        255,
        256,
        -256,
        -257,
        65535,
        65536,
        -65536,
        -65537,
        u32::MAX as i64,
        u32::MAX as i64 + 1,
        -(u32::MAX as i64) - 1,
        -(u32::MAX as i64) - 2,
    ];
    match rng.gen_range(0..3) {
        0 => *edges.choose(rng).unwrap(),
        1 => rng.gen_range(-100_000..100_000),
        _ => rng.gen::<i64>(),
    }
}

fn random_string(rng: &mut ChaCha8Rng) -> String {
    let pieces = [
        "a", "Z", "_", " ", "ß", "é", "漢", "🐼", "\u{0}", "\n", "\"", "\\", "\u{ffff}",
    ];
    let len = rng.gen_range(0..30);
    (0..len).map(|_| *pieces.choose(rng).unwrap()).collect()
}

fn random_value(rng: &mut ChaCha8Rng, field_type: &str) -> OperationValue {
    match field_type {
        "bool" => OperationValue::Boolean(rng.gen_bool(0.5)),
        "int" => OperationValue::Integer(random_int(rng)),
        "float" => OperationValue::Float(random_float(rng)),
        "str" => OperationValue::String(random_string(rng)),
        "bytes" => {
            let len = *[0usize, 1, 23, 24, 34, 255, 256, rng.gen_range(0..64)]
                .choose(rng)
                .unwrap();
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            OperationValue::Bytes(data)
        }
        "relation" => OperationValue::Relation(Relation::new(random_hash(rng).into())),
        "relation_list" => {
            let n = rng.gen_range(0..5);
            let mut ids: Vec<p2panda_rs::document::DocumentId> =
                (0..n).map(|_| random_hash(rng).into()).collect();
            if n > 0 && rng.gen_bool(0.3) {
                ids.push(ids[0].clone()); // duplicates and order are kept
            }
            OperationValue::RelationList(RelationList::new(ids))
        }
        "pinned_relation" => {
            OperationValue::PinnedRelation(PinnedRelation::new(random_view(rng, 3)))
        }
        _ => {
            let n = rng.gen_range(0..4);
            OperationValue::PinnedRelationList(PinnedRelationList::new(
                (0..n).map(|_| random_view(rng, 3)).collect(),
            ))
        }
    }
}

struct RandomSchema {
    id: SchemaId,
    fields: Vec<(String, String)>,
}

impl RandomSchema {
    fn new(rng: &mut ChaCha8Rng, types: &[&str], max_fields: usize) -> Self {
        let n = rng.gen_range(1..=max_fields);
        let mut names = BTreeSet::new();
        while names.len() < n {
            names.insert(random_name(rng, 10));
        }
        let fields = names
            .into_iter()
            .map(|name| {
                let base = *types.choose(rng).unwrap();
                let field_type = if base.starts_with("relation") || base.starts_with("pinned") {
                    format!("{}({})", base, random_schema_id(rng))
                } else {
                    base.to_string()
                };
                (name, field_type)
            })
            .collect();
        Self {
            id: random_schema_id(rng),
            fields,
        }
    }

    fn json(&self) -> Value {
        json!({"id": self.id.to_string(), "fields": self.fields})
    }

    fn base_type(field_type: &str) -> &str {
        field_type.split('(').next().unwrap()
    }

    fn fields(&self, rng: &mut ChaCha8Rng, all: bool) -> Vec<(String, OperationValue)> {
        let mut chosen = vec![];
        for (name, field_type) in &self.fields {
            if all || rng.gen_bool(0.4) {
                chosen.push((name.clone(), random_value(rng, Self::base_type(field_type))));
            }
        }
        chosen
    }
}

fn build_operation(
    schema: &RandomSchema,
    action: OperationAction,
    previous: Option<&DocumentViewId>,
    fields: Vec<(String, OperationValue)>,
) -> EncodedOperation {
    let mut builder = OperationBuilder::new(&schema.id).action(action);
    if let Some(previous) = previous {
        builder = builder.previous(previous);
    }
    if action != OperationAction::Delete {
        builder = builder.fields(&fields);
    }
    encode_operation(&builder.build().expect("a well-formed operation")).expect("encodable")
}

fn random_operation(rng: &mut ChaCha8Rng, schema: &RandomSchema) -> EncodedOperation {
    match rng.gen_range(0..5) {
        0 | 1 => build_operation(
            schema,
            OperationAction::Create,
            None,
            schema.fields(rng, true),
        ),
        2 | 3 => {
            let previous = random_view(rng, 3);
            build_operation(
                schema,
                OperationAction::Update,
                Some(&previous),
                schema.fields(rng, false),
            )
        }
        _ => build_operation(
            schema,
            OperationAction::Delete,
            Some(&random_view(rng, 3)),
            vec![],
        ),
    }
}

fn gen_operation(rng: &mut ChaCha8Rng) -> Value {
    let schema = RandomSchema::new(rng, &TYPES, 9);
    let encoded = random_operation(rng, &schema);
    let bytes = encoded.into_bytes();
    json!({
        "kind": "operation",
        "schema": schema.json(),
        "operation": hex::encode(&bytes),
        "reference": describe_operation(&bytes, &schema.json()),
    })
}

fn gen_entry(rng: &mut ChaCha8Rng) -> Value {
    let (key_pair, private) = random_key_pair(rng);
    let log_id = match rng.gen_range(0..4) {
        0 => 0,
        1 => rng.gen_range(0..300),
        2 => u64::MAX,
        _ => rng.gen::<u64>() >> rng.gen_range(0..64),
    };
    let seq_num = match rng.gen_range(0..5) {
        0 => 1,
        1 => rng.gen_range(1..50),
        2 => [4u64, 13, 40, 121, 364, 1093][rng.gen_range(0..6)],
        3 => u64::MAX,
        _ => (rng.gen::<u64>() >> rng.gen_range(0..64)).max(1),
    };
    let schema = RandomSchema::new(rng, &TYPES, 4);
    let payload = random_operation(rng, &schema);
    // sign_entry keeps a skiplink it was given even where none belongs (the entry then fails to
    // decode), so give one only where the seq num requires it.
    let backlink = if seq_num > 1 {
        Some(random_hash(rng))
    } else {
        None
    };
    let skiplink = if skiplink_required(seq_num) {
        Some(random_hash(rng))
    } else {
        None
    };
    let entry = sign_entry(
        &LogId::new(log_id),
        &SeqNum::new(seq_num).unwrap(),
        skiplink.as_ref(),
        backlink.as_ref(),
        &payload,
        &key_pair,
    )
    .expect("sign");
    let encoded = encode_entry(&entry).expect("encode");
    let bytes = encoded.into_bytes();
    json!({
        "kind": "entry",
        "private_key": private,
        "log_id": log_id,
        "seq_num": seq_num,
        "backlink": backlink.as_ref().map(hash_hex),
        "skiplink": skiplink.as_ref().map(hash_hex),
        "payload": hex::encode(payload.into_bytes()),
        "entry": hex::encode(&bytes),
        "reference": describe_entry(&bytes),
    })
}

/// One writer: a key, a log for the document, and the operations it knows (closed under ancestors).
struct Writer {
    key_pair: KeyPair,
    log_id: u64,
    entries: Vec<Hash>,
    known: BTreeSet<String>,
}

fn tips(known: &BTreeSet<String>, previous: &HashMap<String, Vec<String>>) -> Vec<String> {
    let followed: BTreeSet<&String> = known.iter().flat_map(|id| previous[id].iter()).collect();
    known
        .iter()
        .filter(|id| !followed.contains(id))
        .cloned()
        .collect()
}

fn ancestors(id: &str, previous: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![id.to_string()];
    while let Some(current) = stack.pop() {
        if seen.insert(current.clone()) {
            stack.extend(previous[&current].iter().cloned());
        }
    }
    seen
}

fn gen_document(rng: &mut ChaCha8Rng) -> Value {
    // Few fields so that concurrent writes collide; NaN floats are kept out of merges' parents by
    // default (the reference treats an operation with a NaN as never visited): "nan" cases allow them.
    let with_nan = rng.gen_bool(0.1);
    let schema = RandomSchema::new(rng, &["str", "int", "float", "bool", "relation_list"], 3);
    let n_writers = rng.gen_range(1..=4);
    let mut writers: Vec<Writer> = (0..n_writers)
        .map(|i| Writer {
            key_pair: random_key_pair(rng).0,
            log_id: i as u64 + rng.gen_range(0..3),
            entries: vec![],
            known: BTreeSet::new(),
        })
        .collect();
    let mut previous: HashMap<String, Vec<String>> = HashMap::new();
    let mut deletes: BTreeSet<String> = BTreeSet::new();
    let mut operations: Vec<Value> = vec![];
    let mut flags: BTreeSet<&str> = BTreeSet::new();
    let n_ops = rng.gen_range(1..=14);
    let delete_rate = if rng.gen_bool(0.3) { 0.15 } else { 0.0 };

    let clean = |rng: &mut ChaCha8Rng, mut fields: Vec<(String, OperationValue)>| {
        for (_, value) in fields.iter_mut() {
            if let OperationValue::Float(f) = value {
                if f.is_nan() && !with_nan {
                    *f = rng.gen_range(-4.0..4.0);
                }
            }
        }
        fields
    };

    for step in 0..n_ops {
        let w = if step == 0 {
            0
        } else {
            rng.gen_range(0..writers.len())
        };
        if step > 0 {
            // sync: learn everything, or what another writer knows
            if rng.gen_bool(0.35) {
                let all: BTreeSet<String> = previous.keys().cloned().collect();
                writers[w].known = all;
            } else if rng.gen_bool(0.3) {
                let other = rng.gen_range(0..writers.len());
                let theirs = writers[other].known.clone();
                writers[w].known.extend(theirs);
            }
            if writers[w].known.is_empty() || writers[w].known.iter().any(|id| deletes.contains(id))
            {
                continue; // a node refuses to write on a document it knows is deleted
            }
        }
        let (action, prev_ids, fields) = if step == 0 {
            let fields = schema.fields(rng, true);
            (OperationAction::Create, None, clean(rng, fields))
        } else {
            let mut prev = tips(&writers[w].known, &previous);
            if rng.gen_bool(0.04) {
                // a previous naming an operation together with one of its ancestors
                let all_ancestors: BTreeSet<String> = prev
                    .iter()
                    .flat_map(|id| ancestors(id, &previous))
                    .filter(|id| !prev.contains(id))
                    .collect();
                if let Some(extra) = all_ancestors.iter().collect::<Vec<_>>().choose(rng) {
                    prev.push((*extra).clone());
                    flags.insert("ancestor_in_previous");
                }
            }
            let action = if rng.gen_bool(delete_rate) {
                OperationAction::Delete
            } else {
                OperationAction::Update
            };
            let fields = schema.fields(rng, false);
            (action, Some(prev), clean(rng, fields))
        };
        if fields
            .iter()
            .any(|(_, v)| matches!(v, OperationValue::Float(f) if f.is_nan()))
        {
            flags.insert("nan");
        }
        let previous_view = prev_ids.as_ref().map(|ids| {
            let ids: Vec<OperationId> = ids.iter().map(|id| id.parse().unwrap()).collect();
            DocumentViewId::new(&ids)
        });
        let payload = build_operation(&schema, action, previous_view.as_ref(), fields);
        let writer = &mut writers[w];
        let seq_num = SeqNum::new(writer.entries.len() as u64 + 1).unwrap();
        let backlink = writer.entries.last().cloned();
        let skiplink = if skiplink_required(seq_num.as_u64()) {
            seq_num
                .skiplink_seq_num()
                .and_then(|s| writer.entries.get(s.as_u64() as usize - 1).cloned())
        } else {
            None
        };
        let entry = sign_entry(
            &LogId::new(writer.log_id),
            &seq_num,
            skiplink.as_ref(),
            backlink.as_ref(),
            &payload,
            &writer.key_pair,
        )
        .expect("sign");
        let encoded = encode_entry(&entry).expect("encode");
        let id = hash_hex(&encoded.hash());
        writer.entries.push(encoded.hash());
        writer.known.insert(id.clone());
        previous.insert(id.clone(), prev_ids.clone().unwrap_or_default());
        if action == OperationAction::Delete {
            deletes.insert(id.clone());
        }
        operations.push(json!([
            hex::encode(encoded.into_bytes()),
            hex::encode(payload.into_bytes())
        ]));
    }

    // older views: random sets of operations (the view is their ancestors)
    let ids: Vec<String> = previous
        .keys()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let views: Vec<Value> = (0..rng.gen_range(0..3))
        .map(|_| {
            let n = rng.gen_range(1..=ids.len().min(3));
            let chosen: BTreeSet<&String> = (0..n).map(|_| ids.choose(rng).unwrap()).collect();
            json!(chosen.into_iter().collect::<Vec<_>>())
        })
        .collect();
    operations.shuffle(rng); // the build must not depend on the order operations come in
    let graph: BTreeMap<&String, &Vec<String>> = previous.iter().collect();
    json!({
        "kind": "document",
        "schema": schema.json(),
        "operations": operations,
        "views": views,
        "flags": flags.into_iter().collect::<Vec<_>>(),
        "graph": graph,
        "reference": describe_document(&operations, &schema.json(), &views),
    })
}

fn verify(case: &Value) -> Value {
    let hex_of = |key: &str| hex::decode(case[key].as_str().unwrap_or("")).unwrap_or_default();
    match case["kind"].as_str().unwrap_or("") {
        "entry" => describe_entry(&hex_of("entry")),
        "operation" => describe_operation(&hex_of("operation"), &case["schema"]),
        "document" => describe_document(
            case["operations"]
                .as_array()
                .map(|v| v.as_slice())
                .unwrap_or(&[]),
            &case["schema"],
            case["views"]
                .as_array()
                .map(|v| v.as_slice())
                .unwrap_or(&[]),
        ),
        "schema_id" => match SchemaId::new(case["text"].as_str().unwrap_or("")) {
            Ok(id) => json!({"ok": true, "id": id.to_string()}),
            Err(err) => json!({"ok": false, "error": err.to_string()}),
        },
        "field_type" => match case["text"]
            .as_str()
            .unwrap_or("")
            .parse::<p2panda_rs::schema::FieldType>()
        {
            Ok(field_type) => json!({"ok": true, "type": field_type.to_string()}),
            Err(err) => json!({"ok": false, "error": err.to_string()}),
        },
        other => json!({"ok": false, "error": format!("unknown kind {other}")}),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            let seed: u64 = args[2].parse().expect("seed");
            let count: usize = args[3].parse().expect("count");
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in 0..count {
                let case = match i % 3 {
                    0 => gen_entry(&mut rng),
                    1 => gen_operation(&mut rng),
                    _ => gen_document(&mut rng),
                };
                writeln!(out, "{}", case).unwrap();
            }
        }
        Some("verify") => {
            for line in std::io::stdin().lock().lines() {
                let case: Value =
                    serde_json::from_str(&line.expect("stdin")).expect("a JSON case per line");
                writeln!(out, "{}", verify(&case)).unwrap();
            }
        }
        _ => {
            eprintln!("usage: p2panda-reference-diff gen SEED COUNT | verify");
            std::process::exit(2);
        }
    }
}
