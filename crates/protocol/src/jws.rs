//! Token signatures verified natively, for the hosts that have no WebCrypto to ask (the
//! command line) or that keep verification in Rust (the Worker): RS256 (RSASSA-PKCS1-v1_5 with
//! SHA-256), ES256 (ECDSA on P-256 with SHA-256, `r || s`) and EdDSA (Ed25519, strict).

use edge_authz::token::Verify;
use edge_authz::Alg;

/// Whether `v.signature` is `v.key`'s signature of `v.message` by `v.alg`.
pub fn verify(v: &Verify<'_>) -> bool {
    let (a, b) = v.key.params();
    if v.key.alg != v.alg {
        return false;
    }
    match v.alg {
        Alg::Rs256 => rs256(&a, &b, v.message, v.signature),
        Alg::Es256 => es256(&a, &b, v.message, v.signature),
        Alg::EdDsa => eddsa(&a, v.message, v.signature),
    }
}

fn rs256(n: &[u8], e: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use rsa::{BigUint, RsaPublicKey};
    let max = edge_authz::identity::RSA_BITS.1;
    let Ok(key) =
        RsaPublicKey::new_with_max_size(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e), max)
    else {
        return false;
    };
    let Ok(sig) = Signature::try_from(signature) else {
        return false;
    };
    VerifyingKey::<sha2::Sha256>::new(key)
        .verify(message, &sig)
        .is_ok()
}

fn es256(x: &[u8], y: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::EncodedPoint;
    let (Ok(x), Ok(y)) = (<[u8; 32]>::try_from(x), <[u8; 32]>::try_from(y)) else {
        return false;
    };
    let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    let Ok(key) = VerifyingKey::from_encoded_point(&point) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

fn eddsa(x: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(x) = <[u8; 32]>::try_from(x) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&x) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &sig).is_ok()
}
