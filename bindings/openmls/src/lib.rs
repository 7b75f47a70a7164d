//! `secret_group._openmls`: the PyO3 binding of OpenMLS.
use openmls::prelude::Ciphersuite;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::{crypto::OpenMlsCrypto, OpenMlsProvider};
use pyo3::prelude::*;

/// Names of the ciphersuites the RustCrypto provider supports.
#[pyfunction]
fn supported_ciphersuites() -> Vec<String> {
    let provider = OpenMlsRustCrypto::default();
    provider
        .crypto()
        .supported_ciphersuites()
        .into_iter()
        .map(|cs: Ciphersuite| format!("{cs:?}"))
        .collect()
}

#[pymodule]
fn _openmls(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(supported_ciphersuites, m)?)?;
    Ok(())
}
