//! The lab's one error type: why the lab could not start.

use std::net::SocketAddr;
use std::sync::Arc;

/// Why the lab could not start.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: Arc<std::io::Error>,
    },
    /// Key or certificate generation failed.
    #[error("lab PKI: {0}")]
    Pki(String),
    /// Zone construction or signing failed.
    #[error("lab DNS: {0}")]
    Dns(String),
    /// The embedded canary could not start.
    #[error("lab canary: {0}")]
    Canary(String),
}

impl LabError {
    pub(crate) fn bind(addr: SocketAddr, e: std::io::Error) -> Self {
        LabError::Bind {
            addr,
            source: Arc::new(e),
        }
    }
}
