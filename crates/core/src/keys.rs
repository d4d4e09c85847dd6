//! Ed25519 keys as the base64 strings the command line and the JS API exchange, and key ids.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::Error;

/// The origin's signing key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

/// A trusted origin key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

/// A fresh key pair as base64 strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPair {
    pub public_key: String,
    pub secret_key: String,
}

fn decode32(text: &str, what: &str) -> Result<[u8; 32], Error> {
    let t = text.trim();
    let bytes = STANDARD
        .decode(t)
        .or_else(|_| STANDARD_NO_PAD.decode(t))
        .map_err(|_| Error::InvalidKey(format!("the {what} is not base64")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::InvalidKey(format!("the {what} must be 32 bytes, got {}", bytes.len())))
}

/// The id of a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let d = Sha256::digest(public_key);
    hex(d.get(..8).unwrap_or(&[]))
}

impl KeyPair {
    /// Derives a key pair from 32 bytes of randomness (the caller brings the randomness: the core
    /// has no entropy source of its own).
    pub fn from_seed(seed: [u8; 32]) -> KeyPair {
        let sk = SecretKey::from_seed(seed);
        KeyPair {
            public_key: sk.public_key().to_base64(),
            secret_key: sk.to_base64(),
        }
    }
}

impl SecretKey {
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn from_base64(text: &str) -> Result<SecretKey, Error> {
        Ok(Self::from_seed(decode32(text, "secret key")?))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public_key().id)
    }
}

impl PublicKey {
    fn from_verifying(key: VerifyingKey) -> PublicKey {
        let id = key_id(key.as_bytes());
        PublicKey { key, id }
    }

    pub fn from_base64(text: &str) -> Result<PublicKey, Error> {
        let bytes = decode32(text, "public key")?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| Error::InvalidKey("the public key is not a valid Ed25519 point".into()))?;
        Ok(Self::from_verifying(key))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match <[u8; 64]>::try_from(signature) {
            Ok(sig) => self
                .key
                .verify_strict(message, &Signature::from_bytes(&sig))
                .is_ok(),
            Err(_) => false,
        }
    }
}
