//! `secret_group._openmls`: a thin PyO3 binding of OpenMLS.
//!
//! Bytes in, bytes out. No OpenMLS type crosses into Python. The data path:
//!
//! ```text
//!  Python (secret_group.mls)                Rust (this crate)
//!  ------------------------                 -----------------
//!  Member(seed, items) ───────────────────▶ Provider { RustCrypto, JournalStorage <- items }
//!  member.op(group_id, bytes) ────────────▶ detach GIL; lock; atomic { OpenMLS op; on error undo }
//!  member.take_changes() ◀──────────────── keys changed since the last take: (key, value|None)
//! ```
//!
//! Atomicity: the storage (`storage.rs`) keeps an undo log per operation. If an operation fails (an
//! error or a panic), its writes are undone and its cached group is dropped (reloaded from storage on
//! next use), so a failed operation leaves no changes and no changed state. Successful operations keep
//! their deserialised groups cached: no call reloads or copies state.
//!
//! Threads: a `Member` is `Send` and `Sync` (its state is behind a mutex) and every entry point
//! releases the GIL while it works, so a member can be used from any thread (e.g. a database worker or
//! `asyncio.to_thread`); calls on one member run one at a time.
//!
//! Panics: every entry point catches panics and raises `InternalError` (an `MlsError`), never
//! PyO3's `PanicException`.
//!
//! Identity binding: the MLS signature key is the member's p2panda Ed25519 key and the BasicCredential
//! identity is its 32-byte public key. Key packages and group members that break this binding are
//! refused, so an MLS sender is always the Bamboo author of the same key.

mod codec;
mod storage;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::{crypto::OpenMlsCrypto, types::SignatureScheme, OpenMlsProvider};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use storage::{JournalStorage, StorageError};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

create_exception!(_openmls, MlsError, PyException, "Root of every MLS error.");
create_exception!(
    _openmls,
    MalformedMessage,
    MlsError,
    "Bytes that do not decode as the expected MLS message."
);
create_exception!(
    _openmls,
    InvalidMessage,
    MlsError,
    "A message that fails MLS validation or decryption."
);
create_exception!(
    _openmls,
    WrongEpoch,
    MlsError,
    "A message for an epoch this member has no secrets for."
);
create_exception!(
    _openmls,
    UnknownGroup,
    MlsError,
    "No group with this id is stored."
);
create_exception!(
    _openmls,
    GroupExists,
    MlsError,
    "A group with this id is already stored."
);
create_exception!(
    _openmls,
    InvalidKeyPackage,
    MlsError,
    "A key package that is malformed, invalid or breaks the identity binding."
);
create_exception!(
    _openmls,
    NoMatchingKeyPackage,
    MlsError,
    "A welcome for none of this member's key packages."
);
create_exception!(
    _openmls,
    NotAMember,
    MlsError,
    "A public key that is not a member of the group."
);
create_exception!(
    _openmls,
    RemovedSender,
    MlsError,
    "A late message from a sender no longer in the group."
);
create_exception!(
    _openmls,
    GroupStateError,
    MlsError,
    "The group's state does not allow this (pending commit, evicted, ...)."
);
create_exception!(
    _openmls,
    IdentityMismatch,
    MlsError,
    "A credential identity that is not its signature key."
);
create_exception!(
    _openmls,
    InvalidSnapshot,
    MlsError,
    "Group items that do not restore a group (a key of another group, or rows that do not load)."
);
create_exception!(
    _openmls,
    InternalError,
    MlsError,
    "A library error or a panic inside OpenMLS."
);

/// A failure, classified for Python. Carries a lower-case message naming the offending value.
enum Fail {
    Malformed(String),
    Invalid(String),
    WrongEpoch(String),
    UnknownGroup(String),
    GroupExists(String),
    KeyPackage(String),
    NoMatchingKeyPackage(String),
    NotAMember(String),
    RemovedSender(String),
    State(String),
    Identity(String),
    Snapshot(String),
    Internal(String),
    /// A failure that left the in-memory group unchanged (its cached copy stays valid).
    Untouched(Box<Fail>),
}

impl From<Fail> for PyErr {
    fn from(fail: Fail) -> PyErr {
        match fail {
            Fail::Malformed(m) => MalformedMessage::new_err(m),
            Fail::Invalid(m) => InvalidMessage::new_err(m),
            Fail::WrongEpoch(m) => WrongEpoch::new_err(m),
            Fail::UnknownGroup(m) => UnknownGroup::new_err(m),
            Fail::GroupExists(m) => GroupExists::new_err(m),
            Fail::KeyPackage(m) => InvalidKeyPackage::new_err(m),
            Fail::NoMatchingKeyPackage(m) => NoMatchingKeyPackage::new_err(m),
            Fail::NotAMember(m) => NotAMember::new_err(m),
            Fail::RemovedSender(m) => RemovedSender::new_err(m),
            Fail::State(m) => GroupStateError::new_err(m),
            Fail::Identity(m) => IdentityMismatch::new_err(m),
            Fail::Snapshot(m) => InvalidSnapshot::new_err(m),
            Fail::Internal(m) => InternalError::new_err(m),
            Fail::Untouched(inner) => (*inner).into(),
        }
    }
}

fn internal(what: &str, err: impl std::fmt::Debug) -> Fail {
    Fail::Internal(format!("{what}: {err:?}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serialize(what: &str, msg: &impl tls_codec::Serialize) -> Result<Vec<u8>, Fail> {
    msg.tls_serialize_detached().map_err(|e| internal(what, e))
}

fn classify_validation(err: &ValidationError) -> Fail {
    match err {
        ValidationError::WrongEpoch | ValidationError::NoPastEpochData => Fail::WrongEpoch(
            format!("message is for an epoch without secrets here: {err}"),
        ),
        _ => Fail::Invalid(format!("message rejected: {err}")),
    }
}

fn classify_process(err: ProcessMessageError<StorageError>) -> Fail {
    match &err {
        ProcessMessageError::ValidationError(v) => classify_validation(v),
        ProcessMessageError::GroupStateError(s) => {
            Fail::State(format!("group cannot process messages: {s}"))
        }
        ProcessMessageError::LibraryError(e) => internal("openmls library error", e),
        ProcessMessageError::StorageError(e) => internal("storage error", e),
        _ => Fail::Invalid(format!("message rejected: {err}")),
    }
}

/// The 32-byte identity of a credential; errors if it is not a 32-byte basic credential.
fn identity_of(credential: &Credential) -> Result<Vec<u8>, Fail> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|e| Fail::Identity(format!("credential is not a basic credential: {e:?}")))?;
    let identity = basic.identity();
    if identity.len() != 32 {
        return Err(Fail::Identity(format!(
            "credential identity is {} bytes, not a 32-byte key",
            identity.len()
        )));
    }
    Ok(identity.to_vec())
}

fn check_binding(credential: &Credential, signature_key: &[u8]) -> Result<Vec<u8>, Fail> {
    let identity = identity_of(credential)?;
    if identity != signature_key {
        return Err(Fail::Identity(format!(
            "credential identity {} differs from signature key {}",
            hex(&identity),
            hex(signature_key)
        )));
    }
    Ok(identity)
}

fn check_group_bindings(group: &MlsGroup) -> Result<(), Fail> {
    for member in group.members() {
        check_binding(&member.credential, &member.signature_key)?;
    }
    Ok(())
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Run `f`, turning a panic into `Fail::Internal`.
fn guarded<T>(f: impl FnOnce() -> Result<T, Fail>) -> Result<T, Fail> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(Fail::Internal(format!(
            "panic inside openmls: {}",
            panic_message(panic)
        ))),
    }
}

/// The OpenMLS provider: RustCrypto for crypto and randomness, our journal for storage.
struct Provider {
    crypto: RustCrypto,
    storage: JournalStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = JournalStorage;

    fn storage(&self) -> &JournalStorage {
        &self.storage
    }
    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }
    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

fn encoded_group_id(group_id: &[u8]) -> Result<Vec<u8>, Fail> {
    codec::encode(&GroupId::from_slice(group_id)).map_err(|e| internal("encoding group id", e))
}

/// One member's state: its signer, its storage (all its groups) and its loaded groups.
struct State {
    provider: Provider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    groups: HashMap<Vec<u8>, MlsGroup>,
    join_config: MlsGroupJoinConfig,
    create_config: MlsGroupCreateConfig,
}

impl State {
    /// Run `op` so that it either fully succeeds or leaves storage exactly as before. On failure the
    /// cached copy of `group` (which may hold half-applied state) is dropped and reloaded when needed.
    fn atomic<T>(
        &mut self,
        group: Option<&[u8]>,
        op: impl FnOnce(&mut Self) -> Result<T, Fail>,
    ) -> Result<T, Fail> {
        self.provider.storage.begin();
        match guarded(|| op(self)) {
            Ok(value) => {
                self.provider.storage.commit();
                Ok(value)
            }
            Err(Fail::Untouched(fail)) => {
                self.provider.storage.rollback();
                Err(*fail)
            }
            Err(fail) => {
                self.provider.storage.rollback();
                if let Some(id) = group {
                    self.groups.remove(id);
                }
                Err(fail)
            }
        }
    }

    fn ensure_loaded(&mut self, group_id: &[u8]) -> Result<(), Fail> {
        if !self.groups.contains_key(group_id) {
            let loaded = MlsGroup::load(&self.provider.storage, &GroupId::from_slice(group_id))
                .map_err(|e| internal("loading group", e))?
                .ok_or_else(|| {
                    Fail::UnknownGroup(format!("no group {} is stored", hex(group_id)))
                })?;
            self.groups.insert(group_id.to_vec(), loaded);
        }
        Ok(())
    }

    /// Run `op` on a stored group with the provider and signer, atomically.
    fn with_group<T>(
        &mut self,
        group_id: &[u8],
        op: impl FnOnce(&mut MlsGroup, &Provider, &SignatureKeyPair) -> Result<T, Fail>,
    ) -> Result<T, Fail> {
        self.atomic(Some(group_id), |m| {
            m.ensure_loaded(group_id)?;
            let State {
                provider,
                signer,
                groups,
                ..
            } = m;
            let group = groups.get_mut(group_id).expect("loaded above");
            op(group, provider, signer)
        })
    }

    fn parse_key_package(&self, raw: &[u8]) -> Result<KeyPackage, Fail> {
        let kp_in = KeyPackageIn::tls_deserialize_exact(raw)
            .map_err(|e| Fail::KeyPackage(format!("key package does not decode: {e:?}")))?;
        let kp = kp_in
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| Fail::KeyPackage(format!("key package is invalid: {e}")))?;
        if kp.ciphersuite() != CIPHERSUITE {
            return Err(Fail::KeyPackage(format!(
                "key package uses ciphersuite {:?}",
                kp.ciphersuite()
            )));
        }
        check_binding(
            kp.leaf_node().credential(),
            kp.leaf_node().signature_key().as_slice(),
        )
        .map_err(|f| match f {
            Fail::Identity(m) => {
                Fail::KeyPackage(format!("key package breaks the identity binding: {m}"))
            }
            other => other,
        })?;
        Ok(kp)
    }

    fn leaf_index_of(group: &MlsGroup, public_key: &[u8]) -> Result<LeafNodeIndex, Fail> {
        group
            .members()
            .find(|m| m.signature_key == public_key)
            .map(|m| m.index)
            .ok_or_else(|| {
                Fail::NotAMember(format!("{} is not a member of the group", hex(public_key)))
            })
    }
}

/// One MLS member, usable from any thread (see the module docs).
#[pyclass(module = "secret_group._openmls", frozen)]
struct Member {
    state: Mutex<State>,
    public: Vec<u8>,
}

type Commit = (Vec<u8>, Option<Vec<u8>>);
type CommitOut = (Py<PyBytes>, Option<Py<PyBytes>>);
type Items = Vec<(Vec<u8>, Vec<u8>)>;

fn bytes(py: Python<'_>, data: &[u8]) -> Py<PyBytes> {
    PyBytes::new(py, data).unbind()
}

fn commit_out(py: Python<'_>, (commit, welcome): Commit) -> CommitOut {
    (bytes(py, &commit), welcome.map(|w| bytes(py, &w)))
}

fn parse_protocol_message(group_id: &[u8], message: &[u8]) -> Result<ProtocolMessage, Fail> {
    let msg = MlsMessageIn::tls_deserialize_exact(message)
        .map_err(|e| Fail::Malformed(format!("message does not decode: {e:?}")))?;
    let protocol = msg
        .try_into_protocol_message()
        .map_err(|e| Fail::Malformed(format!("message is not a group message: {e:?}")))?;
    if protocol.group_id().as_slice() != group_id {
        return Err(Fail::Invalid(format!(
            "message is for group {}, not {}",
            hex(protocol.group_id().as_slice()),
            hex(group_id)
        )));
    }
    Ok(protocol)
}

type ProcessOut = (&'static str, Vec<u8>, Option<Vec<u8>>, u64, bool);

impl Member {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never unwinds while the lock is held (entry points catch it inside), but if one
        // did, the storage was rolled back by `atomic`: the state is consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `op` with the GIL released, the state locked and panics caught.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&mut State) -> Result<T, Fail> + Send,
    ) -> PyResult<T> {
        Ok(py.detach(|| guarded(|| op(&mut self.lock())))?)
    }

    fn group_op<T: Send>(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        op: impl FnOnce(&mut MlsGroup, &Provider, &SignatureKeyPair) -> Result<T, Fail> + Send,
    ) -> PyResult<T> {
        self.run(py, |st| st.with_group(group_id, op))
    }
}

#[pymethods]
impl Member {
    /// `private_key`: the 32-byte Ed25519 seed (the p2panda private key).
    /// `items`: stored (key, value) pairs that restore the member's state.
    #[new]
    #[pyo3(signature = (private_key, items=None, max_past_epochs=5, out_of_order_tolerance=100, maximum_forward_distance=1000))]
    fn new(
        py: Python<'_>,
        private_key: &[u8],
        items: Option<Items>,
        max_past_epochs: usize,
        out_of_order_tolerance: u32,
        maximum_forward_distance: u32,
    ) -> PyResult<Self> {
        let make = || {
            guarded(|| {
                let seed: [u8; 32] = private_key.try_into().map_err(|_| {
                    Fail::Identity(format!(
                        "private key must be a 32-byte seed, got {} bytes",
                        private_key.len()
                    ))
                })?;
                let public = ed25519_dalek::SigningKey::from_bytes(&seed)
                    .verifying_key()
                    .to_bytes()
                    .to_vec();
                let signer = SignatureKeyPair::from_raw(
                    SignatureScheme::ED25519,
                    seed.to_vec(),
                    public.clone(),
                );
                let credential = CredentialWithKey {
                    credential: BasicCredential::new(public.clone()).into(),
                    signature_key: public.clone().into(),
                };
                let ratchet = SenderRatchetConfiguration::new(
                    out_of_order_tolerance,
                    maximum_forward_distance,
                );
                let join_config = MlsGroupJoinConfig::builder()
                    .use_ratchet_tree_extension(true)
                    .max_past_epochs(max_past_epochs)
                    .sender_ratchet_configuration(ratchet)
                    .build();
                let create_config = MlsGroupCreateConfig::builder()
                    .ciphersuite(CIPHERSUITE)
                    .use_ratchet_tree_extension(true)
                    .max_past_epochs(max_past_epochs)
                    .sender_ratchet_configuration(ratchet)
                    .build();
                let provider = Provider {
                    crypto: RustCrypto::default(),
                    storage: JournalStorage::with_items(items.unwrap_or_default()),
                };
                Ok(Member {
                    state: Mutex::new(State {
                        provider,
                        signer,
                        credential,
                        groups: HashMap::new(),
                        join_config,
                        create_config,
                    }),
                    public,
                })
            })
        };
        Ok(py.detach(make)?)
    }

    /// The 32-byte public key (= credential identity = signature key).
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.public)
    }

    /// Changes since the last call, sorted by key: (key, value) to write, (key, None) to delete.
    #[allow(clippy::type_complexity)]
    fn take_changes(&self, py: Python<'_>) -> PyResult<Vec<(Py<PyBytes>, Option<Py<PyBytes>>)>> {
        let changes = self.run(py, |st| Ok(st.provider.storage.take_changes()))?;
        Ok(changes
            .into_iter()
            .map(|(k, v)| (bytes(py, &k), v.map(|v| bytes(py, &v))))
            .collect())
    }

    /// Forget changes made since the last `take_changes` (as a crash before the write would).
    fn discard_changes(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |st| {
            st.provider.storage.discard_changes();
            // Loaded groups may hold the discarded state; they are reloaded from storage.
            st.groups.clear();
            Ok(())
        })
    }

    /// Every stored (key, value) of one group, in key order: a snapshot for `restore_group`.
    ///
    /// All rows of the group are included, also those keyed by epoch number. Not included: rows that
    /// OpenMLS keeps globally (key packages, and the key pairs of own leaf updates that are not merged
    /// yet): take a snapshot while the group has no pending commit or own pending proposals.
    fn group_items(
        &self,
        py: Python<'_>,
        group_id: &[u8],
    ) -> PyResult<Vec<(Py<PyBytes>, Py<PyBytes>)>> {
        let items = self.run(py, |st| {
            st.atomic(Some(group_id), |m| m.ensure_loaded(group_id))?;
            let prefix = storage::group_prefix(&encoded_group_id(group_id)?);
            Ok(st.provider.storage.items_with_prefix(&prefix))
        })?;
        Ok(items
            .into_iter()
            .map(|(k, v)| (bytes(py, &k), bytes(py, &v)))
            .collect())
    }

    /// Replace every stored row of one group with `items` (from `group_items`), journalled like any
    /// change. Rows of the group that are not in `items` are deleted (e.g. key pairs of a later epoch
    /// number). Empty `items` delete the group. Items that do not load as this group change nothing.
    fn restore_group(&self, py: Python<'_>, group_id: &[u8], items: Items) -> PyResult<()> {
        self.run(py, |st| {
            st.atomic(Some(group_id), |m| {
                let prefix = storage::group_prefix(&encoded_group_id(group_id)?);
                if let Some((key, _)) = items.iter().find(|(k, _)| !k.starts_with(&prefix)) {
                    return Err(Fail::Snapshot(format!(
                        "item key {} is not a row of group {}",
                        hex(key),
                        hex(group_id)
                    )));
                }
                JournalStorage::check_group_rows(&prefix, &items).map_err(|(key, why)| {
                    Fail::Snapshot(format!(
                        "item key {} is not a valid row of group {}: {why}",
                        hex(&key),
                        hex(group_id)
                    ))
                })?;
                let empty = items.is_empty();
                m.provider.storage.replace_prefix(&prefix, items);
                m.groups.remove(group_id);
                if !empty {
                    m.ensure_loaded(group_id).map_err(|e| match e {
                        Fail::Internal(msg) | Fail::UnknownGroup(msg) => Fail::Snapshot(format!(
                            "items do not restore group {}: {msg}",
                            hex(group_id)
                        )),
                        other => other,
                    })?;
                    check_group_bindings(&m.groups[group_id])?;
                }
                Ok(())
            })
        })
    }

    /// A fresh single-use key package (TLS-serialised KeyPackage).
    fn key_package(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let out = self.run(py, |st| {
            st.atomic(None, |m| {
                let bundle = KeyPackage::builder()
                    .build(CIPHERSUITE, &m.provider, &m.signer, m.credential.clone())
                    .map_err(|e| internal("building key package", e))?;
                serialize("key package", bundle.key_package())
            })
        })?;
        Ok(bytes(py, &out))
    }

    fn create_group(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<()> {
        self.run(py, |st| {
            st.atomic(None, |m| {
                match m.ensure_loaded(group_id) {
                    Ok(()) => {
                        return Err(Fail::GroupExists(format!(
                            "group {} already exists",
                            hex(group_id)
                        )))
                    }
                    Err(Fail::UnknownGroup(_)) => {}
                    Err(other) => return Err(other),
                }
                let group = MlsGroup::new_with_group_id(
                    &m.provider,
                    &m.signer,
                    &m.create_config,
                    GroupId::from_slice(group_id),
                    m.credential.clone(),
                )
                .map_err(|e| internal("creating group", e))?;
                m.groups.insert(group_id.to_vec(), group);
                Ok(())
            })
        })
    }

    /// Join from a welcome; returns the group id.
    fn join(&self, py: Python<'_>, welcome: &[u8]) -> PyResult<Py<PyBytes>> {
        let group_id = self.run(py, |st| {
            let msg = MlsMessageIn::tls_deserialize_exact(welcome)
                .map_err(|e| Fail::Malformed(format!("welcome does not decode: {e:?}")))?;
            let welcome = match msg.extract() {
                MlsMessageBodyIn::Welcome(w) => w,
                _ => return Err(Fail::Malformed("message is not a welcome".into())),
            };
            st.atomic(None, |m| {
                let staged =
                    StagedWelcome::new_from_welcome(&m.provider, &m.join_config, welcome, None)
                        .map_err(|e| match e {
                            WelcomeError::NoMatchingKeyPackage => Fail::NoMatchingKeyPackage(
                                "welcome is for none of this member's key packages".into(),
                            ),
                            other => Fail::Invalid(format!("welcome rejected: {other}")),
                        })?;
                let group = staged
                    .into_group(&m.provider)
                    .map_err(|e| Fail::Invalid(format!("welcome rejected: {e}")))?;
                check_group_bindings(&group)?;
                let id = group.group_id().as_slice().to_vec();
                m.groups.insert(id.clone(), group);
                Ok(id)
            })
        })?;
        Ok(bytes(py, &group_id))
    }

    fn has_group(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<bool> {
        self.run(py, |st| {
            match st.atomic(Some(group_id), |m| m.ensure_loaded(group_id)) {
                Ok(_) => Ok(true),
                Err(Fail::UnknownGroup(_)) => Ok(false),
                Err(other) => Err(other),
            }
        })
    }

    /// Commit adding members; returns (commit, welcome). The committer merges after publishing.
    fn add(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        key_packages: Vec<Vec<u8>>,
    ) -> PyResult<CommitOut> {
        let out = self.run(py, |st| {
            let kps = key_packages
                .iter()
                .map(|raw| st.parse_key_package(raw))
                .collect::<Result<Vec<_>, _>>()?;
            if kps.is_empty() {
                return Err(Fail::KeyPackage("no key packages given".into()));
            }
            st.with_group(group_id, |group, provider, signer| {
                let (commit, welcome, _) = group
                    .add_members(provider, signer, &kps)
                    .map_err(|e| Fail::State(format!("cannot add members: {e}")))?;
                Ok((
                    serialize("commit", &commit)?,
                    Some(serialize("welcome", &welcome)?),
                ))
            })
        })?;
        Ok(commit_out(py, out))
    }

    /// Commit removing the members with these public keys; returns (commit, welcome=None).
    fn remove(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        public_keys: Vec<Vec<u8>>,
    ) -> PyResult<CommitOut> {
        let out = self.group_op(py, group_id, |group, provider, signer| {
            if public_keys.is_empty() {
                return Err(Fail::NotAMember("no public keys given".into()));
            }
            let indices = public_keys
                .iter()
                .map(|pk| State::leaf_index_of(group, pk))
                .collect::<Result<Vec<_>, _>>()?;
            let (commit, welcome, _) = group
                .remove_members(provider, signer, &indices)
                .map_err(|e| Fail::State(format!("cannot remove members: {e}")))?;
            let welcome = welcome.map(|w| serialize("welcome", &w)).transpose()?;
            Ok((serialize("commit", &commit)?, welcome))
        })?;
        Ok(commit_out(py, out))
    }

    /// Commit a fresh leaf (post-compromise security), folding in pending proposals.
    fn self_update(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<CommitOut> {
        let out = self.group_op(py, group_id, |group, provider, signer| {
            let bundle = group
                .self_update(provider, signer, LeafNodeParameters::default())
                .map_err(|e| Fail::State(format!("cannot self-update: {e}")))?;
            let welcome = bundle
                .to_welcome_msg()
                .map(|w| serialize("welcome", &w))
                .transpose()?;
            Ok((serialize("commit", bundle.commit())?, welcome))
        })?;
        Ok(commit_out(py, out))
    }

    /// Commit the proposals received so far; returns (commit, welcome if someone was added).
    fn commit_pending_proposals(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<CommitOut> {
        let out = self.group_op(py, group_id, |group, provider, signer| {
            if !group.has_pending_proposals() {
                return Err(Fail::State(
                    "there are no pending proposals to commit".into(),
                ));
            }
            let (commit, welcome, _) = group
                .commit_to_pending_proposals(provider, signer)
                .map_err(|e| Fail::State(format!("cannot commit proposals: {e}")))?;
            let welcome = welcome.map(|w| serialize("welcome", &w)).transpose()?;
            Ok((serialize("commit", &commit)?, welcome))
        })?;
        Ok(commit_out(py, out))
    }

    /// Propose adding the owner of `key_package` (for members who do not commit).
    fn propose_add(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        key_package: Vec<u8>,
    ) -> PyResult<Py<PyBytes>> {
        let out = self.run(py, |st| {
            let kp = st.parse_key_package(&key_package)?;
            st.with_group(group_id, |group, provider, signer| {
                let (msg, _) = group
                    .propose_add_member(provider, signer, &kp)
                    .map_err(|e| Fail::State(format!("cannot propose add: {e}")))?;
                serialize("proposal", &msg)
            })
        })?;
        Ok(bytes(py, &out))
    }

    /// Propose removing the member with this public key.
    fn propose_remove(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        public_key: Vec<u8>,
    ) -> PyResult<Py<PyBytes>> {
        let out = self.group_op(py, group_id, |group, provider, signer| {
            let index = State::leaf_index_of(group, &public_key)?;
            let (msg, _) = group
                .propose_remove_member(provider, signer, index)
                .map_err(|e| Fail::State(format!("cannot propose removal: {e}")))?;
            serialize("proposal", &msg)
        })?;
        Ok(bytes(py, &out))
    }

    /// Propose an update of the own leaf (a committer folds it in).
    fn propose_self_update(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<Py<PyBytes>> {
        let out = self.group_op(py, group_id, |group, provider, signer| {
            let (msg, _) = group
                .propose_self_update(provider, signer, LeafNodeParameters::default())
                .map_err(|e| Fail::State(format!("cannot propose update: {e}")))?;
            serialize("proposal", &msg)
        })?;
        Ok(bytes(py, &out))
    }

    fn merge_pending_commit(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<()> {
        self.group_op(py, group_id, |group, provider, _| {
            if group.pending_commit().is_none() {
                return Err(Fail::State("there is no pending commit to merge".into()));
            }
            group
                .merge_pending_commit(provider)
                .map_err(|e| internal("merging pending commit", e))?;
            check_group_bindings(group)
        })
    }

    fn clear_pending_commit(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<()> {
        self.group_op(py, group_id, |group, provider, _| {
            group
                .clear_pending_commit(provider.storage())
                .map_err(|e| internal("clearing pending commit", e))
        })
    }

    /// Process a message. Returns (kind, sender public key, plaintext or None, epoch of the message,
    /// still a member). Commits are merged and proposals stored as they are processed.
    #[allow(clippy::type_complexity)]
    fn process(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        message: &[u8],
    ) -> PyResult<(&'static str, Py<PyBytes>, Option<Py<PyBytes>>, u64, bool)> {
        let (kind, sender, plaintext, epoch, active): ProcessOut = self.run(py, |st| {
            // Bytes that do not even decode never reach the group (its cache stays valid).
            let protocol = parse_protocol_message(group_id, message)?;
            st.with_group(group_id, |group, provider, _| {
                process_in_group(group, provider, protocol)
            })
        })?;
        Ok((
            kind,
            bytes(py, &sender),
            plaintext.map(|p| bytes(py, &p)),
            epoch,
            active,
        ))
    }

    /// Encrypt an application message for the current epoch.
    fn encrypt(&self, py: Python<'_>, group_id: &[u8], plaintext: &[u8]) -> PyResult<Py<PyBytes>> {
        let out = self.group_op(py, group_id, |group, provider, signer| {
            let msg = group
                .create_message(provider, signer, plaintext)
                .map_err(|e| Fail::State(format!("cannot encrypt: {e}")))?;
            serialize("application message", &msg)
        })?;
        Ok(bytes(py, &out))
    }

    fn epoch(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<u64> {
        self.group_op(py, group_id, |group, _, _| Ok(group.epoch().as_u64()))
    }

    fn is_active(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<bool> {
        self.group_op(py, group_id, |group, _, _| Ok(group.is_active()))
    }

    fn has_pending_commit(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<bool> {
        self.group_op(py, group_id, |group, _, _| {
            Ok(group.pending_commit().is_some())
        })
    }

    fn has_pending_proposals(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<bool> {
        self.group_op(
            py,
            group_id,
            |group, _, _| Ok(group.has_pending_proposals()),
        )
    }

    /// Public keys of the members, in leaf order.
    fn members(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<Vec<Py<PyBytes>>> {
        let keys = self.group_op(py, group_id, |group, _, _| {
            group
                .members()
                .map(|m| identity_of(&m.credential))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(keys.iter().map(|k| bytes(py, k)).collect())
    }

    fn export_secret(
        &self,
        py: Python<'_>,
        group_id: &[u8],
        label: &str,
        context: &[u8],
        length: usize,
    ) -> PyResult<Py<PyBytes>> {
        let out = self.group_op(py, group_id, |group, provider, _| {
            group
                .export_secret(provider.crypto(), label, context, length)
                .map_err(|e| Fail::State(format!("cannot export secret: {e}")))
        })?;
        Ok(bytes(py, &out))
    }

    fn epoch_authenticator(&self, py: Python<'_>, group_id: &[u8]) -> PyResult<Py<PyBytes>> {
        let out = self.group_op(py, group_id, |group, _, _| {
            Ok(group.epoch_authenticator().as_slice().to_vec())
        })?;
        Ok(bytes(py, &out))
    }
}

fn process_in_group(
    group: &mut MlsGroup,
    provider: &Provider,
    protocol: ProtocolMessage,
) -> Result<ProcessOut, Fail> {
    // OpenMLS 0.9.2 changes the group only once a message is fully processed ("applies and persists
    // `ratchet_update` only if processing succeeds"), so a refused message keeps the cached group: a
    // stream of bad envelopes costs no reloads. Re-check this when upgrading OpenMLS.
    let processed = group
        .process_message(provider, protocol)
        .map_err(|e| Fail::Untouched(Box::new(classify_process(e))))?;
    let epoch = processed.epoch().as_u64();
    let sender = identity_of(processed.credential())?;
    let (kind, plaintext) = match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(app) => {
            // A late message from an older epoch counts only while its sender is still a member: a
            // removed member must not keep talking through kept past-epoch secrets.
            if epoch < group.epoch().as_u64() && !group.members().any(|m| m.signature_key == sender)
            {
                return Err(Fail::RemovedSender(format!(
                    "{} sent a message in epoch {epoch} but is no longer a member",
                    hex(&sender)
                )));
            }
            ("application", Some(app.into_bytes()))
        }
        ProcessedMessageContent::ProposalMessage(proposal) => {
            group
                .store_pending_proposal(provider.storage(), *proposal)
                .map_err(|e| internal("storing proposal", e))?;
            ("proposal", None)
        }
        ProcessedMessageContent::ExternalJoinProposalMessage(proposal) => {
            group
                .store_pending_proposal(provider.storage(), *proposal)
                .map_err(|e| internal("storing proposal", e))?;
            ("proposal", None)
        }
        // Our own messages echoed back by replication: nothing to decrypt (the sender keeps its
        // plaintext) and our own commit is merged with `merge_pending_commit`.
        ProcessedMessageContent::OwnPendingCommit => ("own_commit", None),
        ProcessedMessageContent::OwnPrivateMessage => ("own_application", None),
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group
                .merge_staged_commit(provider, *staged)
                .map_err(|e| internal("merging commit", e))?;
            if group.is_active() {
                check_group_bindings(group)?;
            }
            ("commit", None)
        }
    };
    Ok((kind, sender, plaintext, epoch, group.is_active()))
}

/// Names of the ciphersuites the RustCrypto provider supports.
#[pyfunction]
fn supported_ciphersuites() -> PyResult<Vec<String>> {
    Ok(guarded(|| {
        Ok(RustCrypto::default()
            .supported_ciphersuites()
            .into_iter()
            .map(|cs| format!("{cs:?}"))
            .collect())
    })?)
}

/// Panic on purpose inside an atomic operation (tests that a panic becomes an exception).
#[pyfunction]
fn _panic_for_test(py: Python<'_>, member: &Bound<'_, Member>) -> PyResult<()> {
    member.get().run(py, |st| {
        st.atomic(None, |_| -> Result<(), Fail> {
            panic!("deliberate test panic")
        })
    })
}

/// Test hook: the `n`-th storage access from now panics (None disarms). Lets tests make any entry
/// point panic inside OpenMLS, part-way through its writes.
#[pyfunction]
#[pyo3(signature = (member, n))]
fn _panic_at_storage_access(
    py: Python<'_>,
    member: &Bound<'_, Member>,
    n: Option<u32>,
) -> PyResult<()> {
    member.get().run(py, |st| {
        st.provider.storage.panic_at_access(n);
        Ok(())
    })
}

#[pymodule]
fn _openmls(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Member>()?;
    m.add_function(wrap_pyfunction!(supported_ciphersuites, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_at_storage_access, m)?)?;
    m.add("CIPHERSUITE", format!("{CIPHERSUITE:?}"))?;
    for (name, ty) in [
        ("MlsError", py.get_type::<MlsError>()),
        ("MalformedMessage", py.get_type::<MalformedMessage>()),
        ("InvalidMessage", py.get_type::<InvalidMessage>()),
        ("WrongEpoch", py.get_type::<WrongEpoch>()),
        ("UnknownGroup", py.get_type::<UnknownGroup>()),
        ("GroupExists", py.get_type::<GroupExists>()),
        ("InvalidKeyPackage", py.get_type::<InvalidKeyPackage>()),
        (
            "NoMatchingKeyPackage",
            py.get_type::<NoMatchingKeyPackage>(),
        ),
        ("NotAMember", py.get_type::<NotAMember>()),
        ("RemovedSender", py.get_type::<RemovedSender>()),
        ("GroupStateError", py.get_type::<GroupStateError>()),
        ("IdentityMismatch", py.get_type::<IdentityMismatch>()),
        ("InvalidSnapshot", py.get_type::<InvalidSnapshot>()),
        ("InternalError", py.get_type::<InternalError>()),
    ] {
        m.add(name, ty)?;
    }
    Ok(())
}
