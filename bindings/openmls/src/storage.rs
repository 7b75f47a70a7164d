//! `JournalStorage`: our OpenMLS storage provider. An in-memory ordered map with an undo log.
//!
//! - Every write and delete records the old value twice: in the operation's undo log (so a failed
//!   operation, error or panic, is rolled back exactly) and, on the first touch since the last
//!   `take_changes`, in the baseline (so `take_changes` returns exactly the keys whose value differs
//!   from what Python last stored, and `discard_changes` restores them). Reads decode straight from the
//!   map: no copies of the state, ever.
//! - Values are encoded with our compact binary codec (`codec.rs`), not serde_json.
//! - The message-secrets store, which OpenMLS rewrites after every message, is stored without its past
//!   epochs: each past epoch's member list is its own row, written once when its epoch becomes past,
//!   and each past epoch's message secrets are their own row, rewritten only when a late message of
//!   that epoch changes them; both are deleted when the epoch is dropped (`codec::encode_split`). A
//!   message thus changes one row of the size of the current epoch's secret tree.
//!
//! Key layout (persisted format version 2; the serde_json rows of version 1 do not load):
//! - group rows: `b'g' ++ leb(len(G)) ++ G ++ label ++ rest`, G = codec(group id). Every row of a group
//!   shares this prefix, so a group's rows are one range of the map (`group_items`, `restore_group`).
//!   This includes the rows keyed by epoch *number* (`EpochKeyPairs`: rest = codec(epoch) ++ leaf index)
//!   and the past epochs' rows (`Leaves`, `PastSecrets`: rest = digest of the epoch's group context).
//! - global rows: `b'x' ++ label ++ codec(key)`: key packages, PSKs, signature key pairs and the HPKE
//!   key pairs of leaf nodes of own pending updates. They belong to no group and are not in a group
//!   snapshot.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};
use serde::Serialize;

use crate::codec::{self, CodecError};

pub type StorageError = CodecError;
type Result<T> = std::result::Result<T, StorageError>;
type Map = BTreeMap<Vec<u8>, Vec<u8>>;

// Group row labels.
const JOIN_CONFIG: u8 = b'c';
const OWN_LEAF_NODES: u8 = b'l';
const QUEUED_PROPOSAL: u8 = b'p';
const PROPOSAL_REFS: u8 = b'q';
const TREE: u8 = b't';
const INTERIM_TRANSCRIPT_HASH: u8 = b'i';
const CONTEXT: u8 = b'x';
const CONFIRMATION_TAG: u8 = b'f';
const GROUP_STATE: u8 = b's';
const MESSAGE_SECRETS: u8 = b'm';
const LEAVES: u8 = b'v';
const PAST_SECRETS: u8 = b'w';
const RESUMPTION_PSK: u8 = b'r';
const OWN_LEAF_INDEX: u8 = b'o';
const EPOCH_SECRETS: u8 = b'e';
const EPOCH_KEY_PAIRS: u8 = b'k';
// Global row labels.
const KEY_PACKAGE: u8 = b'K';
const PSK: u8 = b'P';
const ENCRYPTION_KEY_PAIR: u8 = b'E';
const SIGNATURE_KEY_PAIR: u8 = b'S';

/// The stored shape of OpenMLS's (crate-private) `EncryptionKeyPair`, to check snapshot rows.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct EpochKeyPairRow {
    public_key: openmls::treesync::EncryptionKey,
    private_key: EpochPrivateKeyRow,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct EpochPrivateKeyRow {
    key: openmls_traits::types::HpkePrivateKey,
}

/// A set of changes: (key, new value or None to delete), sorted by key.
pub type Changes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

#[derive(Default)]
struct Journal {
    values: Map,
    /// Old values of this operation's writes, in order (replayed backwards on rollback).
    undo: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The value at the last `take_changes` of every key touched since.
    baseline: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Journal {
    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if self.values.get(&key) == value.as_ref() {
            return;
        }
        let old = match value {
            Some(v) => self.values.insert(key.clone(), v),
            None => self.values.remove(&key),
        };
        if !self.baseline.contains_key(&key) {
            self.baseline.insert(key.clone(), old.clone());
        }
        self.undo.push((key, old));
    }
}

#[derive(Default)]
pub struct JournalStorage {
    journal: RefCell<Journal>,
    /// Test hook: panic at the n-th storage access from now (see `_panic_at_storage_access`).
    panic_in: Cell<Option<u32>>,
}

/// The key prefix of every row of the group with this (encoded) id.
pub fn group_prefix(encoded_group_id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(encoded_group_id.len() + 4);
    key.push(b'g');
    put_leb(&mut key, encoded_group_id.len() as u64);
    key.extend_from_slice(encoded_group_id);
    key
}

fn put_leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn group_key<G: Serialize + ?Sized>(group_id: &G, label: u8, rest: &[u8]) -> Result<Vec<u8>> {
    let mut key = group_prefix(&codec::encode(group_id)?);
    key.push(label);
    key.extend_from_slice(rest);
    Ok(key)
}

fn global_key<K: Serialize + ?Sized>(label: u8, k: &K) -> Result<Vec<u8>> {
    let mut key = vec![b'x', label];
    key.extend_from_slice(&codec::encode(k)?);
    Ok(key)
}

fn epoch_key_pairs_key<G: Serialize, E: Serialize>(
    group_id: &G,
    epoch: &E,
    leaf_index: u32,
) -> Result<Vec<u8>> {
    let mut rest = codec::encode(epoch)?;
    rest.extend_from_slice(&leaf_index.to_be_bytes());
    group_key(group_id, EPOCH_KEY_PAIRS, &rest)
}

/// The message-secrets row: `leb(n) ++ n * (leb(offset) ++ kind ++ digest) ++ the rest of the store`.
fn split_row(main: &[u8], pieces: &[codec::Piece]) -> Vec<u8> {
    let mut row = Vec::with_capacity(main.len() + 8 + pieces.len() * 37);
    put_leb(&mut row, pieces.len() as u64);
    for p in pieces {
        put_leb(&mut row, p.at as u64);
        row.push(p.kind as u8);
        row.extend_from_slice(&p.digest);
    }
    row.extend_from_slice(main);
    row
}

fn parse_leb(row: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *row
            .get(*pos)
            .ok_or_else(|| CodecError("message secrets row ends early".into()))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CodecError("integer longer than 64 bits".into()))
}

/// A piece cut out of an encoded message-secrets store: (offset, label of its row, digest).
type PieceRef = (usize, u8, [u8; 32]);

/// Every cut-out piece, and the rest of the encoded store.
fn parse_split_row(row: &[u8]) -> Result<(Vec<PieceRef>, &[u8])> {
    let mut pos = 0;
    let n = parse_leb(row, &mut pos)?;
    let mut refs = Vec::new();
    for _ in 0..n {
        let at = parse_leb(row, &mut pos)? as usize;
        let label = match row.get(pos) {
            Some(1) => LEAVES,
            Some(2) => PAST_SECRETS,
            other => return Err(CodecError(format!("unknown piece kind {other:?}"))),
        };
        let digest: [u8; 32] = row
            .get(pos + 1..pos + 33)
            .ok_or_else(|| CodecError("message secrets row ends early".into()))?
            .try_into()
            .expect("32 bytes");
        pos += 33;
        refs.push((at, label, digest));
    }
    Ok((refs, &row[pos..]))
}

fn piece_label(kind: codec::PieceKind) -> u8 {
    match kind {
        codec::PieceKind::Leaves => LEAVES,
        codec::PieceKind::Secrets => PAST_SECRETS,
    }
}

impl JournalStorage {
    pub fn with_items(items: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let storage = JournalStorage::default();
        storage.journal.borrow_mut().values = items.into_iter().collect();
        storage
    }

    fn tick(&self) {
        if let Some(n) = self.panic_in.get() {
            if n == 0 {
                self.panic_in.set(None);
                // resume_unwind: a real unwind through OpenMLS, without the panic hook's stderr noise.
                std::panic::resume_unwind(Box::new("deliberate test panic at a storage access"));
            }
            self.panic_in.set(Some(n - 1));
        }
    }

    pub fn panic_at_access(&self, n: Option<u32>) {
        self.panic_in.set(n);
    }

    /// Start an operation: nothing of an earlier operation may be pending.
    pub fn begin(&self) {
        self.journal.borrow_mut().undo.clear();
    }

    /// The operation succeeded: its changes stay (and are in the next `take_changes`).
    pub fn commit(&self) {
        self.journal.borrow_mut().undo.clear();
    }

    /// The operation failed: undo its writes, newest first.
    pub fn rollback(&self) {
        let mut j = self.journal.borrow_mut();
        let undo = std::mem::take(&mut j.undo);
        for (key, old) in undo.into_iter().rev() {
            match old {
                Some(v) => j.values.insert(key, v),
                None => j.values.remove(&key),
            };
        }
    }

    /// Keys whose value differs from the last take, with their current value (None = deleted).
    pub fn take_changes(&self) -> Changes {
        let mut j = self.journal.borrow_mut();
        let baseline = std::mem::take(&mut j.baseline);
        let mut changes: Changes = baseline
            .into_iter()
            .filter_map(|(key, base)| {
                let current = j.values.get(&key);
                (current != base.as_ref()).then(|| (key, current.cloned()))
            })
            .collect();
        changes.sort();
        changes
    }

    /// Restore every key to its value at the last take.
    pub fn discard_changes(&self) {
        let mut j = self.journal.borrow_mut();
        j.undo.clear();
        let baseline = std::mem::take(&mut j.baseline);
        for (key, base) in baseline {
            match base {
                Some(v) => j.values.insert(key, v),
                None => j.values.remove(&key),
            };
        }
    }

    /// Every stored row whose key starts with `prefix`, in key order.
    pub fn items_with_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let j = self.journal.borrow();
        j.values
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Check the rows of a group snapshot that loading the group does not read: every key must carry
    /// a group label, epoch key pairs must decode, and past-epoch rows must be referenced by the
    /// message-secrets row. Returns the first offending key with the reason.
    pub fn check_group_rows(
        prefix: &[u8],
        items: &[(Vec<u8>, Vec<u8>)],
    ) -> std::result::Result<(), (Vec<u8>, String)> {
        const GROUP_LABELS: &[u8] = &[
            JOIN_CONFIG,
            OWN_LEAF_NODES,
            QUEUED_PROPOSAL,
            PROPOSAL_REFS,
            TREE,
            INTERIM_TRANSCRIPT_HASH,
            CONTEXT,
            CONFIRMATION_TAG,
            GROUP_STATE,
            MESSAGE_SECRETS,
            LEAVES,
            PAST_SECRETS,
            RESUMPTION_PSK,
            OWN_LEAF_INDEX,
            EPOCH_SECRETS,
            EPOCH_KEY_PAIRS,
        ];
        let mut main_key = prefix.to_vec();
        main_key.push(MESSAGE_SECRETS);
        let referenced: Vec<Vec<u8>> = match items.iter().find(|(k, _)| *k == main_key) {
            Some((_, row)) => parse_split_row(row)
                .map_err(|e| (main_key.clone(), e.to_string()))?
                .0
                .into_iter()
                .map(|(_, label, d)| JournalStorage::piece_key(prefix, label, &d))
                .collect(),
            None => Vec::new(),
        };
        for (key, value) in items {
            let Some(&label) = key.get(prefix.len()) else {
                return Err((key.clone(), "no label".into()));
            };
            if !GROUP_LABELS.contains(&label) {
                return Err((key.clone(), format!("unknown label {label}")));
            }
            if label == EPOCH_KEY_PAIRS {
                codec::decode::<Vec<EpochKeyPairRow>>(value)
                    .map_err(|e| (key.clone(), format!("epoch key pairs: {e}")))?;
            }
            if (label == LEAVES || label == PAST_SECRETS) && !referenced.contains(key) {
                return Err((key.clone(), "a past epoch row nothing refers to".into()));
            }
        }
        Ok(())
    }

    /// Replace every row under `prefix` with `items` (journalled like any write).
    pub fn replace_prefix(&self, prefix: &[u8], items: Vec<(Vec<u8>, Vec<u8>)>) {
        let old: Vec<Vec<u8>> = self
            .items_with_prefix(prefix)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut j = self.journal.borrow_mut();
        for key in old {
            j.set(key, None);
        }
        for (key, value) in items {
            j.set(key, Some(value));
        }
    }

    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.tick();
        self.journal.borrow_mut().set(key, Some(value));
        Ok(())
    }

    fn delete(&self, key: Vec<u8>) -> Result<()> {
        self.tick();
        self.journal.borrow_mut().set(key, None);
        Ok(())
    }

    fn get<V: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<V>> {
        self.tick();
        let j = self.journal.borrow();
        j.values.get(key).map(|v| codec::decode(v)).transpose()
    }

    fn write<V: Serialize + ?Sized>(&self, key: Vec<u8>, value: &V) -> Result<()> {
        self.put(key, codec::encode(value)?)
    }

    /// Lists (own leaf nodes, proposal refs) are one row: a sequence of encoded items.
    fn list(&self, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .get::<Vec<serde_bytes::ByteBuf>>(key)?
            .unwrap_or_default()
            .into_iter()
            .map(|b| b.into_vec())
            .collect())
    }

    fn put_list(&self, key: Vec<u8>, list: Vec<Vec<u8>>) -> Result<()> {
        if list.is_empty() {
            return self.delete(key);
        }
        let list: Vec<serde_bytes::ByteBuf> =
            list.into_iter().map(serde_bytes::ByteBuf::from).collect();
        self.write(key, &list)
    }

    fn read_list<V: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Vec<V>> {
        self.list(key)?
            .iter()
            .map(|item| codec::decode(item))
            .collect()
    }

    fn piece_key(prefix: &[u8], label: u8, digest: &[u8; 32]) -> Vec<u8> {
        let mut key = prefix.to_vec();
        key.push(label);
        key.extend_from_slice(digest);
        key
    }

    /// The row keys of the pieces the stored message-secrets row refers to.
    fn referenced_pieces(&self, prefix: &[u8], row_key: &[u8]) -> Result<Vec<Vec<u8>>> {
        let j = self.journal.borrow();
        match j.values.get(row_key) {
            Some(row) => Ok(parse_split_row(row)?
                .0
                .into_iter()
                .map(|(_, label, d)| JournalStorage::piece_key(prefix, label, &d))
                .collect()),
            None => Ok(Vec::new()),
        }
    }
}

macro_rules! group_getters {
    ($($name:ident, $ty:ident, $label:expr;)*) => {
        $(
            fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, V: traits::$ty<CURRENT_VERSION>>(
                &self,
                group_id: &GroupId,
            ) -> Result<Option<V>> {
                self.get(&group_key(group_id, $label, &[])?)
            }
        )*
    };
}

macro_rules! group_setters {
    ($($name:ident, $ty:ident, $label:expr;)*) => {
        $(
            fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, V: traits::$ty<CURRENT_VERSION>>(
                &self,
                group_id: &GroupId,
                value: &V,
            ) -> Result<()> {
                self.write(group_key(group_id, $label, &[])?, value)
            }
        )*
    };
}

macro_rules! group_deleters {
    ($($name:ident, $label:expr;)*) => {
        $(
            fn $name<GroupId: traits::GroupId<CURRENT_VERSION>>(&self, group_id: &GroupId) -> Result<()> {
                self.delete(group_key(group_id, $label, &[])?)
            }
        )*
    };
}

impl StorageProvider<CURRENT_VERSION> for JournalStorage {
    type Error = StorageError;

    group_setters! {
        write_mls_join_config, MlsGroupJoinConfig, JOIN_CONFIG;
        write_tree, TreeSync, TREE;
        write_interim_transcript_hash, InterimTranscriptHash, INTERIM_TRANSCRIPT_HASH;
        write_context, GroupContext, CONTEXT;
        write_confirmation_tag, ConfirmationTag, CONFIRMATION_TAG;
        write_resumption_psk_store, ResumptionPskStore, RESUMPTION_PSK;
        write_own_leaf_index, LeafNodeIndex, OWN_LEAF_INDEX;
        write_group_epoch_secrets, GroupEpochSecrets, EPOCH_SECRETS;
    }

    group_getters! {
        mls_group_join_config, MlsGroupJoinConfig, JOIN_CONFIG;
        tree, TreeSync, TREE;
        group_context, GroupContext, CONTEXT;
        interim_transcript_hash, InterimTranscriptHash, INTERIM_TRANSCRIPT_HASH;
        confirmation_tag, ConfirmationTag, CONFIRMATION_TAG;
        resumption_psk_store, ResumptionPskStore, RESUMPTION_PSK;
        own_leaf_index, LeafNodeIndex, OWN_LEAF_INDEX;
        group_epoch_secrets, GroupEpochSecrets, EPOCH_SECRETS;
    }

    group_deleters! {
        delete_own_leaf_nodes, OWN_LEAF_NODES;
        delete_group_config, JOIN_CONFIG;
        delete_tree, TREE;
        delete_confirmation_tag, CONFIRMATION_TAG;
        delete_group_state, GROUP_STATE;
        delete_context, CONTEXT;
        delete_interim_transcript_hash, INTERIM_TRANSCRIPT_HASH;
        delete_all_resumption_psk_secrets, RESUMPTION_PSK;
        delete_own_leaf_index, OWN_LEAF_INDEX;
        delete_group_epoch_secrets, EPOCH_SECRETS;
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<()> {
        self.write(group_key(group_id, GROUP_STATE, &[])?, group_state)
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>> {
        self.get(&group_key(group_id, GROUP_STATE, &[])?)
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<()> {
        let key = group_key(group_id, OWN_LEAF_NODES, &[])?;
        let mut list = self.list(&key)?;
        list.push(codec::encode(leaf_node)?);
        self.put_list(key, list)
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>> {
        self.read_list(&group_key(group_id, OWN_LEAF_NODES, &[])?)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<()> {
        let encoded_ref = codec::encode(proposal_ref)?;
        self.write(
            group_key(group_id, QUEUED_PROPOSAL, &encoded_ref)?,
            proposal,
        )?;
        let key = group_key(group_id, PROPOSAL_REFS, &[])?;
        let mut refs = self.list(&key)?;
        refs.push(encoded_ref);
        self.put_list(key, refs)
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>> {
        self.read_list(&group_key(group_id, PROPOSAL_REFS, &[])?)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>> {
        let refs = self.list(&group_key(group_id, PROPOSAL_REFS, &[])?)?;
        refs.into_iter()
            .map(|encoded_ref| {
                let proposal = self
                    .get(&group_key(group_id, QUEUED_PROPOSAL, &encoded_ref)?)?
                    .ok_or_else(|| CodecError("a queued proposal ref has no proposal".into()))?;
                Ok((codec::decode(&encoded_ref)?, proposal))
            })
            .collect()
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<()> {
        let encoded_ref = codec::encode(proposal_ref)?;
        let key = group_key(group_id, PROPOSAL_REFS, &[])?;
        let mut refs = self.list(&key)?;
        refs.retain(|r| *r != encoded_ref);
        self.put_list(key, refs)?;
        self.delete(group_key(group_id, QUEUED_PROPOSAL, &encoded_ref)?)
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        let key = group_key(group_id, PROPOSAL_REFS, &[])?;
        for encoded_ref in self.list(&key)? {
            self.delete(group_key(group_id, QUEUED_PROPOSAL, &encoded_ref)?)?;
        }
        self.delete(key)
    }

    fn write_message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        message_secrets: &MessageSecrets,
    ) -> Result<()> {
        self.tick();
        let prefix = group_prefix(&codec::encode(group_id)?);
        let row_key = group_key(group_id, MESSAGE_SECRETS, &[])?;
        let (main, pieces) = {
            let j = self.journal.borrow();
            let known = |digest: &[u8; 32]| {
                let key = JournalStorage::piece_key(&prefix, LEAVES, digest);
                j.values.contains_key(&key)
            };
            codec::encode_split(message_secrets, &known)?
        };
        let old_refs = self.referenced_pieces(&prefix, &row_key)?;
        let row = split_row(&main, &pieces);
        let new_refs: Vec<Vec<u8>> = pieces
            .iter()
            .map(|p| JournalStorage::piece_key(&prefix, piece_label(p.kind), &p.digest))
            .collect();
        let mut j = self.journal.borrow_mut();
        for (piece, key) in pieces.into_iter().zip(new_refs.iter()) {
            // `set` records nothing for an unchanged value: past secrets untouched by this message
            // are not in the journal.
            if let Some(bytes) = piece.bytes {
                j.set(key.clone(), Some(bytes));
            }
        }
        for key in old_refs {
            if !new_refs.contains(&key) {
                j.set(key, None);
            }
        }
        j.set(row_key, Some(row));
        Ok(())
    }

    fn message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MessageSecrets>> {
        self.tick();
        let prefix = group_prefix(&codec::encode(group_id)?);
        let row_key = group_key(group_id, MESSAGE_SECRETS, &[])?;
        let j = self.journal.borrow();
        let Some(row) = j.values.get(&row_key) else {
            return Ok(None);
        };
        let (refs, main) = parse_split_row(row)?;
        let mut whole = Vec::with_capacity(main.len());
        let mut done = 0;
        for (at, label, digest) in refs {
            let piece = j
                .values
                .get(&JournalStorage::piece_key(&prefix, label, &digest))
                .ok_or_else(|| CodecError("a row of a past epoch is missing".into()))?;
            let part = main
                .get(done..at)
                .ok_or_else(|| CodecError("past epoch offsets out of order".into()))?;
            whole.extend_from_slice(part);
            whole.extend_from_slice(piece);
            done = at;
        }
        whole.extend_from_slice(&main[done..]);
        codec::decode(&whole).map(Some)
    }

    fn delete_message_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<()> {
        let prefix = group_prefix(&codec::encode(group_id)?);
        let row_key = group_key(group_id, MESSAGE_SECRETS, &[])?;
        for key in self.referenced_pieces(&prefix, &row_key)? {
            self.delete(key)?;
        }
        self.delete(row_key)
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<()> {
        self.write(epoch_key_pairs_key(group_id, epoch, leaf_index)?, key_pairs)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>> {
        Ok(self
            .get(&epoch_key_pairs_key(group_id, epoch, leaf_index)?)?
            .unwrap_or_default())
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<()> {
        self.delete(epoch_key_pairs_key(group_id, epoch, leaf_index)?)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<()> {
        self.write(
            global_key(SIGNATURE_KEY_PAIR, public_key)?,
            signature_key_pair,
        )
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>> {
        self.get(&global_key(SIGNATURE_KEY_PAIR, public_key)?)
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<()> {
        self.delete(global_key(SIGNATURE_KEY_PAIR, public_key)?)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<()> {
        self.write(global_key(ENCRYPTION_KEY_PAIR, public_key)?, key_pair)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>> {
        self.get(&global_key(ENCRYPTION_KEY_PAIR, public_key)?)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<()> {
        self.delete(global_key(ENCRYPTION_KEY_PAIR, public_key)?)
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<()> {
        self.write(global_key(KEY_PACKAGE, hash_ref)?, key_package)
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>> {
        self.get(&global_key(KEY_PACKAGE, hash_ref)?)
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<()> {
        self.delete(global_key(KEY_PACKAGE, hash_ref)?)
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<()> {
        self.write(global_key(PSK, psk_id)?, psk)
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>> {
        self.get(&global_key(PSK, psk_id)?)
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &PskKey) -> Result<()> {
        self.delete(global_key(PSK, psk_id)?)
    }
}
