//! What p2panda-rs 0.8.1 makes of bytes: entries, operations (validated against a schema) and
//! documents, as JSON. Used for the cases this crate generates and for the ones Python sends.

use std::str::FromStr;

use p2panda_rs::document::traits::AsDocument;
use p2panda_rs::document::{Document, DocumentBuilder, DocumentViewId};
use p2panda_rs::entry::decode::decode_entry;
use p2panda_rs::entry::traits::{AsEncodedEntry, AsEntry};
use p2panda_rs::entry::EncodedEntry;
use p2panda_rs::hash::Hash;
use p2panda_rs::identity::PublicKey;
use p2panda_rs::operation::decode::decode_operation;
use p2panda_rs::operation::traits::AsOperation;
use p2panda_rs::operation::validate::validate_operation;
use p2panda_rs::operation::{EncodedOperation, Operation, OperationId, OperationValue};
use p2panda_rs::schema::{FieldType, Schema, SchemaId};
use serde_json::{json, Map, Value};

pub fn hash_hex(hash: &Hash) -> String {
    hash.as_str().to_string()
}

pub fn view_json(view: &DocumentViewId) -> Value {
    Value::Array(view.iter().map(|id| json!(id.as_str())).collect())
}

/// A typed field value: {"t": field type, "v": value}; floats as their 64 bits in hex (keeps NaNs).
pub fn value_json(value: &OperationValue) -> Value {
    match value {
        OperationValue::Boolean(b) => json!({"t": "bool", "v": b}),
        OperationValue::Integer(i) => json!({"t": "int", "v": i}),
        OperationValue::Float(f) => json!({"t": "float", "v": format!("{:016x}", f.to_bits())}),
        OperationValue::String(s) => json!({"t": "str", "v": s}),
        OperationValue::Bytes(b) => json!({"t": "bytes", "v": hex::encode(b)}),
        OperationValue::Relation(r) => json!({"t": "relation", "v": r.document_id().as_str()}),
        OperationValue::RelationList(r) => {
            let ids: Vec<Value> = r.iter().map(|d| json!(d.as_str())).collect();
            json!({"t": "relation_list", "v": ids})
        }
        OperationValue::PinnedRelation(p) => {
            json!({"t": "pinned_relation", "v": view_json(p.view_id())})
        }
        OperationValue::PinnedRelationList(p) => {
            let views: Vec<Value> = p.iter().map(view_json).collect();
            json!({"t": "pinned_relation_list", "v": views})
        }
    }
}

fn error(stage: &str, err: impl std::fmt::Display) -> Value {
    json!({"ok": false, "stage": stage, "error": err.to_string()})
}

pub fn describe_entry(bytes: &[u8]) -> Value {
    let encoded = EncodedEntry::from_bytes(bytes);
    match decode_entry(&encoded) {
        Ok(entry) => json!({
            "ok": true,
            "public_key": entry.public_key().to_string(),
            "log_id": entry.log_id().as_u64(),
            "seq_num": entry.seq_num().as_u64(),
            "skiplink": entry.skiplink().map(hash_hex),
            "backlink": entry.backlink().map(hash_hex),
            "payload_size": entry.payload_size(),
            "payload_hash": hash_hex(entry.payload_hash()),
            "signature": hex::encode(entry.signature().into_bytes()),
            "hash": hash_hex(&encoded.hash()),
        }),
        Err(err) => error("entry", err),
    }
}

/// A schema given as JSON: {"id": schema id} for system schemas, plus "fields": [[name, type], ...]
/// for application schemas.
pub fn schema_from_json(spec: &Value) -> Result<Schema, String> {
    let id = SchemaId::new(spec["id"].as_str().ok_or("schema id missing")?)
        .map_err(|e| e.to_string())?;
    if let SchemaId::Application(_, _) = id {
        let mut fields = vec![];
        for pair in spec["fields"].as_array().ok_or("schema fields missing")? {
            let name = pair[0].as_str().ok_or("field name")?.to_string();
            let field_type = FieldType::from_str(pair[1].as_str().ok_or("field type")?)
                .map_err(|e| e.to_string())?;
            fields.push((name, field_type));
        }
        let borrowed: Vec<(&str, FieldType)> = fields
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        Schema::new(&id, "differential test", &borrowed).map_err(|e| e.to_string())
    } else {
        Schema::get_system(id)
            .map(|s| s.to_owned())
            .map_err(|e| e.to_string())
    }
}

pub fn operation_json(operation: &Operation) -> Value {
    let fields = operation.fields().map(|fields| {
        let mut map = Map::new();
        for (name, value) in fields.iter() {
            map.insert(name.to_string(), value_json(value));
        }
        Value::Object(map)
    });
    json!({
        "ok": true,
        "action": operation.action().as_u64(),
        "schema_id": operation.schema_id().to_string(),
        "previous": operation.previous().map(|p| view_json(&p)),
        "fields": fields,
    })
}

pub fn validated_operation(bytes: &[u8], schema: &Schema) -> Result<Operation, Value> {
    let encoded = EncodedOperation::from_bytes(bytes);
    let plain = decode_operation(&encoded).map_err(|e| error("decode", e))?;
    validate_operation(&plain, schema).map_err(|e| error("validate", e))
}

pub fn describe_operation(bytes: &[u8], schema: &Value) -> Value {
    let schema = match schema_from_json(schema) {
        Ok(schema) => schema,
        Err(err) => return error("schema", err),
    };
    match validated_operation(bytes, &schema) {
        Ok(operation) => operation_json(&operation),
        Err(err) => err,
    }
}

pub fn document_json(document: &Document, order: &[OperationId]) -> Value {
    let fields = document.fields().map(|fields| {
        let mut map = Map::new();
        for (name, value) in fields.iter() {
            map.insert(
                name.to_string(),
                json!({"value": value_json(value.value()), "writer": value.id().as_str()}),
            );
        }
        Value::Object(map)
    });
    json!({
        "ok": true,
        "id": document.id().as_str(),
        "owner": document.author().to_string(),
        "view_id": view_json(document.view_id()),
        "deleted": document.is_deleted(),
        "fields": fields,
        "order": order.iter().map(|id| json!(id.as_str())).collect::<Vec<Value>>(),
    })
}

type Published = (OperationId, Operation, PublicKey);

/// Builds the document from [entry hex, operation hex] pairs, then each requested older view.
pub fn describe_document(operations: &[Value], schema: &Value, views: &[Value]) -> Value {
    let schema = match schema_from_json(schema) {
        Ok(schema) => schema,
        Err(err) => return error("schema", err),
    };
    let mut published: Vec<Published> = vec![];
    for pair in operations {
        let entry_bytes = hex::decode(pair[0].as_str().unwrap_or("")).unwrap_or_default();
        let encoded = EncodedEntry::from_bytes(&entry_bytes);
        let entry = match decode_entry(&encoded) {
            Ok(entry) => entry,
            Err(err) => return error("entry", err),
        };
        let op_bytes = hex::decode(pair[1].as_str().unwrap_or("")).unwrap_or_default();
        let operation = match validated_operation(&op_bytes, &schema) {
            Ok(operation) => operation,
            Err(err) => return err,
        };
        published.push((
            encoded.hash().into(),
            operation,
            entry.public_key().to_owned(),
        ));
    }
    let builder = DocumentBuilder::new(published);
    let build = |result: Result<(Document, Vec<Published>), _>| match result {
        Ok((document, sorted)) => {
            let order: Vec<OperationId> = sorted.iter().map(|(id, _, _)| id.clone()).collect();
            document_json(&document, &order)
        }
        Err(err) => error("build", err),
    };
    let current = build(builder.build());
    let mut older = vec![];
    for view in views {
        let ids: Vec<OperationId> = view
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str())
                    .filter_map(|id| id.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        older.push(build(builder.build_to_view_id(DocumentViewId::new(&ids))));
    }
    json!({"ok": true, "current": current, "views": older})
}
