//! Ed25519 keys as the strings the command line and the JS API exchange, and key ids.
//!
//! A key's text is typed, [`PUBLIC_KEY_PREFIX`] or [`SECRET_KEY_PREFIX`] then the base64 of its 32
//! bytes, or bare (the base64 alone, the form of older key files). Every reader takes both; a typed
//! key of the other kind is refused (`wrong_key_kind`). Writers write the typed form.

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

/// The prefix of a public key's typed text.
pub const PUBLIC_KEY_PREFIX: &str = "edge-authz-public:";
/// The prefix of a secret key's typed text.
pub const SECRET_KEY_PREFIX: &str = "edge-authz-secret:";

/// A fresh key pair as typed key texts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPair {
    pub public_key: String,
    pub secret_key: String,
}

/// The 32 bytes of a trimmed base64 text.
fn decode32(t: &str, what: &str) -> Result<[u8; 32], Error> {
    let bytes = STANDARD
        .decode(t)
        .or_else(|_| STANDARD_NO_PAD.decode(t))
        .map_err(|_| Error::InvalidKey(format!("the {what} is not base64")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::InvalidKey(format!("the {what} must be 32 bytes, got {}", bytes.len())))
}

/// The 32 bytes of a key text, typed or bare; `public` says which kind is expected, and a typed key
/// of the other kind is refused.
fn decode_key(text: &str, public: bool) -> Result<[u8; 32], Error> {
    let (own, other, what) = if public {
        (PUBLIC_KEY_PREFIX, SECRET_KEY_PREFIX, "public key")
    } else {
        (SECRET_KEY_PREFIX, PUBLIC_KEY_PREFIX, "secret key")
    };
    let t = text.trim();
    if t.starts_with(other) {
        return Err(Error::WrongKeyKind {
            public_expected: public,
        });
    }
    decode32(t.strip_prefix(own).unwrap_or(t), what)
}

/// Whether a key text is typed (starts with [`PUBLIC_KEY_PREFIX`] or [`SECRET_KEY_PREFIX`]), not
/// bare base64.
pub fn is_typed_key(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(PUBLIC_KEY_PREFIX) || t.starts_with(SECRET_KEY_PREFIX)
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
            public_key: sk.public_key().to_typed(),
            secret_key: sk.to_typed(),
        }
    }
}

impl SecretKey {
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// A secret key from its typed text or bare base64; a typed public key is `wrong_key_kind`.
    pub fn from_base64(text: &str) -> Result<SecretKey, Error> {
        Ok(Self::from_seed(decode_key(text, false)?))
    }

    /// The bare base64 of the seed.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    /// The typed text, [`SECRET_KEY_PREFIX`] then the base64 of the seed.
    pub fn to_typed(&self) -> String {
        SECRET_KEY_PREFIX.to_string() + &self.to_base64()
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

    /// A public key from its typed text or bare base64; a typed secret key is `wrong_key_kind`.
    pub fn from_base64(text: &str) -> Result<PublicKey, Error> {
        let bytes = decode_key(text, true)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| Error::InvalidKey("the public key is not a valid Ed25519 point".into()))?;
        Ok(Self::from_verifying(key))
    }

    /// The bare base64 of the key's 32 bytes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    /// The typed text, [`PUBLIC_KEY_PREFIX`] then the base64 of the key's 32 bytes.
    pub fn to_typed(&self) -> String {
        PUBLIC_KEY_PREFIX.to_string() + &self.to_base64()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SecretKey, String, String) {
        let sk = SecretKey::from_seed([5; 32]);
        let (pk, sk64) = (sk.public_key().to_base64(), sk.to_base64());
        (sk, pk, sk64)
    }

    #[test]
    fn typed_and_bare_keys_are_taken() {
        let (sk, pk64, sk64) = pair();
        let id = sk.public_key().id().to_string();
        for text in [
            pk64.clone(),
            format!("{PUBLIC_KEY_PREFIX}{pk64}"),
            format!("  {PUBLIC_KEY_PREFIX}{pk64}\n"),
            pk64.trim_end_matches('=').to_string(),
        ] {
            assert_eq!(PublicKey::from_base64(&text).unwrap().id(), id, "{text}");
        }
        for text in [sk64.clone(), format!("{SECRET_KEY_PREFIX}{sk64}\n")] {
            let k = SecretKey::from_base64(&text).unwrap();
            assert_eq!(k.public_key().id(), id, "{text}");
        }
    }

    #[test]
    fn a_typed_key_of_the_other_kind_is_refused() {
        let (sk, _, _) = pair();
        let e = PublicKey::from_base64(&sk.to_typed()).unwrap_err();
        assert_eq!(e.code(), "wrong_key_kind");
        assert!(e
            .to_string()
            .starts_with("a secret key was given where a public key is expected"));
        assert!(!e.to_string().contains(&sk.to_base64()));
        let e = SecretKey::from_base64(&sk.public_key().to_typed()).unwrap_err();
        assert_eq!(e.code(), "wrong_key_kind");
        assert!(e
            .to_string()
            .starts_with("a public key was given where a secret key is expected"));
        // A prefix that is neither is not base64.
        let e = PublicKey::from_base64("edge-authz-pub:AAAA").unwrap_err();
        assert_eq!(e.code(), "invalid_key");
    }

    #[test]
    fn typed_keys_round_trip() {
        let (sk, _, _) = pair();
        let pk = sk.public_key();
        assert!(pk.to_typed().starts_with(PUBLIC_KEY_PREFIX));
        assert!(sk.to_typed().starts_with(SECRET_KEY_PREFIX));
        assert_eq!(PublicKey::from_base64(&pk.to_typed()).unwrap(), pk);
        assert_eq!(
            SecretKey::from_base64(&sk.to_typed()).unwrap().to_base64(),
            sk.to_base64()
        );
        let pair = KeyPair::from_seed([5; 32]);
        assert_eq!(pair.public_key, pk.to_typed());
        assert_eq!(pair.secret_key, sk.to_typed());
        assert!(is_typed_key(&pair.public_key) && is_typed_key(&pair.secret_key));
        assert!(!is_typed_key(&pk.to_base64()));
        // The id is of the 32 bytes, whatever the form.
        assert_eq!(pk.id(), key_id(&pk.to_bytes()));
    }
}
