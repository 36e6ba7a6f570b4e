//! JSON Web Tokens: signature (HS256, RS256, ES256), expiry and not-before against a `now`
//! given by the caller, optional issuer and audience, and the claims that grant actions on
//! key patterns:
//!
//! ```json
//! {"exp": 1767225600, "publish": ["live/cam*"], "play": "live/*"}
//! ```
//!
//! `publish` and `play` are a pattern or a list of patterns (`*` matches any run of
//! characters); an action without its claim is not granted.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::request::{Action, Denial};
use proto::glob;

/// Clock difference tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: f64 = 30.0;

/// Why keys could not be loaded. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A PEM file that is neither an RSA nor a P-256 public key.
    #[error("not an RSA or EC P-256 public key in PEM form")]
    Pem,
    /// A JWK set that does not parse.
    #[error("JWK set: {0}")]
    Jwks(String),
    /// A JWK set with no usable key.
    #[error("JWK set has no RS256, ES256 or HS256 key")]
    NoKeys,
    /// An empty HS256 secret.
    #[error("empty HS256 secret")]
    EmptySecret,
}

/// One verification key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The keys tokens may be signed with.
#[derive(Clone, Default)]
pub struct Keys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.keys.iter().map(|k| (k.alg, k.kid.clone())).collect();
        f.debug_struct("Keys").field("keys", &algs).finish()
    }
}

impl Keys {
    /// An HS256 shared secret.
    pub fn hs256(secret: &[u8]) -> Result<Keys, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(Keys {
            keys: vec![Key {
                kid: None,
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(secret),
            }],
        })
    }

    /// A PEM public key (RSA for RS256, EC P-256 for ES256), or a JWK set in JSON.
    pub fn from_file_contents(text: &[u8]) -> Result<Keys, KeyError> {
        let trimmed = text.trim_ascii_start();
        if trimmed.first() == Some(&b'{') {
            return Keys::from_jwks(trimmed);
        }
        let (alg, key) = if let Ok(k) = DecodingKey::from_rsa_pem(text) {
            (Algorithm::RS256, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(text) {
            (Algorithm::ES256, k)
        } else {
            return Err(KeyError::Pem);
        };
        Ok(Keys {
            keys: vec![Key {
                kid: None,
                alg,
                key,
            }],
        })
    }

    /// A JWK set (`{"keys": [...]}`); keys of other algorithms are skipped.
    pub fn from_jwks(json: &[u8]) -> Result<Keys, KeyError> {
        let set: JwkSet =
            serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                    if p.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                (AlgorithmParameters::OctetKey(_), None | Some(KeyAlgorithm::HS256)) => {
                    Algorithm::HS256
                }
                _ => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Keys { keys })
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a token names a key id this set does not have (a JWKS refresh may help).
    pub fn lacks_kid_of(&self, token: &str) -> bool {
        match jsonwebtoken::decode_header(token) {
            Ok(h) => h
                .kid
                .is_some_and(|kid| !self.keys.iter().any(|k| k.kid.as_deref() == Some(&kid))),
            Err(_) => false,
        }
    }
}

/// Issuer and audience requirements.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud` (one of), when set.
    pub audience: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Patterns {
    fn any(&self, key: &str) -> bool {
        match self {
            Patterns::One(p) => glob::matches(p, key),
            Patterns::Many(v) => v.iter().any(|p| glob::matches(p, key)),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    exp: Option<f64>,
    nbf: Option<f64>,
    publish: Option<Patterns>,
    play: Option<Patterns>,
}

/// Verifies `token` for `action` on `key` at `now` (seconds since the Unix epoch).
pub fn verify(
    keys: &Keys,
    policy: &Policy,
    token: &str,
    action: Action,
    key: &str,
    now: f64,
) -> Result<(), Denial> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| Denial::BadJwt(e.to_string()))?;
    if !matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256
    ) {
        return Err(Denial::BadJwt(format!(
            "algorithm {:?} not accepted",
            header.alg
        )));
    }
    let candidates = keys.keys.iter().filter(|k| {
        k.alg == header.alg
            && match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    });
    let mut validation = Validation::new(header.alg);
    // Time is checked below against the caller's `now`, not the library's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = policy.audience.is_some();
    if let Some(aud) = &policy.audience {
        validation.set_audience(&[aud]);
    }
    if let Some(iss) = &policy.issuer {
        validation.set_issuer(&[iss]);
    }
    let mut last = Denial::BadJwt(format!("no {:?} key for this token", header.alg));
    for k in candidates {
        match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
            Ok(data) => return check_claims(&data.claims, action, key, now),
            Err(e) => last = Denial::BadJwt(e.to_string()),
        }
    }
    Err(last)
}

fn check_claims(c: &Claims, action: Action, key: &str, now: f64) -> Result<(), Denial> {
    if c.exp.is_some_and(|exp| now > exp + LEEWAY_SECS) {
        return Err(Denial::Expired);
    }
    if c.nbf.is_some_and(|nbf| now + LEEWAY_SECS < nbf) {
        return Err(Denial::NotYetValid);
    }
    let grant = match action {
        Action::Publish => &c.publish,
        Action::Play => &c.play,
    };
    if grant.as_ref().is_some_and(|g| g.any(key)) {
        Ok(())
    } else {
        Err(Denial::NotGranted { action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn hs(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn hs256_grants_and_times() {
        let keys = Keys::hs256(b"k").unwrap();
        let p = Policy::default();
        let now = 1_000_000.0;
        let t = hs(
            serde_json::json!({"exp": now + 60.0, "publish": "live/*", "play": ["a/b"]}),
            b"k",
        );
        assert_eq!(
            verify(&keys, &p, &t, Action::Publish, "live/x", now),
            Ok(())
        );
        assert_eq!(
            verify(&keys, &p, &t, Action::Publish, "other/x", now),
            Err(Denial::NotGranted {
                action: Action::Publish
            })
        );
        assert_eq!(verify(&keys, &p, &t, Action::Play, "a/b", now), Ok(()));
        assert_eq!(
            verify(&keys, &p, &t, Action::Play, "a/b", now + 120.0),
            Err(Denial::Expired)
        );
        let t = hs(serde_json::json!({"nbf": now + 600.0, "play": "*"}), b"k");
        assert_eq!(
            verify(&keys, &p, &t, Action::Play, "a/b", now),
            Err(Denial::NotYetValid)
        );
        let t = hs(serde_json::json!({"play": "*"}), b"wrong");
        assert!(matches!(
            verify(&keys, &p, &t, Action::Play, "a/b", now),
            Err(Denial::BadJwt(_))
        ));
        assert!(matches!(
            verify(&keys, &p, "not.a.jwt", Action::Play, "a/b", now),
            Err(Denial::BadJwt(_))
        ));
    }

    #[test]
    fn issuer_and_audience() {
        let keys = Keys::hs256(b"k").unwrap();
        let p = Policy {
            issuer: Some("me".into()),
            audience: Some("ms".into()),
        };
        let ok = hs(
            serde_json::json!({"iss": "me", "aud": "ms", "play": "*"}),
            b"k",
        );
        assert_eq!(verify(&keys, &p, &ok, Action::Play, "a/b", 0.0), Ok(()));
        let bad = hs(
            serde_json::json!({"iss": "you", "aud": "ms", "play": "*"}),
            b"k",
        );
        assert!(verify(&keys, &p, &bad, Action::Play, "a/b", 0.0).is_err());
    }

    proptest::proptest! {
        /// A signed token's verdict follows its claims: expiry and not-before with the
        /// leeway, then the grant of the action on the key.
        #[test]
        fn verdict_follows_the_claims(
            exp in proptest::option::of(-200i64..200),
            nbf in proptest::option::of(-200i64..200),
            grant in proptest::option::of(proptest::collection::vec("[a-c*]{1,4}(/[a-c*]{1,4})?", 1..3)),
            key in "[a-c]{1,3}/[a-c]{1,3}",
            publish in proptest::bool::ANY,
        ) {
            let now = 1_000_000.0;
            let mut claims = serde_json::Map::new();
            if let Some(e) = exp {
                claims.insert("exp".into(), (now as i64 + e).into());
            }
            if let Some(n) = nbf {
                claims.insert("nbf".into(), (now as i64 + n).into());
            }
            let action = if publish { Action::Publish } else { Action::Play };
            if let Some(g) = &grant {
                claims.insert(action.as_str().into(), serde_json::json!(g));
            }
            let token = hs(serde_json::Value::Object(claims), b"k");
            let keys = Keys::hs256(b"k").unwrap();
            let expected = if exp.is_some_and(|e| e as f64 + LEEWAY_SECS < 0.0) {
                Err(Denial::Expired)
            } else if nbf.is_some_and(|n| n as f64 > LEEWAY_SECS) {
                Err(Denial::NotYetValid)
            } else if grant.is_some_and(|g| g.iter().any(|p| glob::matches(p, &key))) {
                Ok(())
            } else {
                Err(Denial::NotGranted { action })
            };
            proptest::prop_assert_eq!(verify(&keys, &Policy::default(), &token, action, &key, now), expected);
        }

        /// Anything that is not a token signed with the key is refused, and never panics;
        /// so is a valid token with one character of its signature changed.
        #[test]
        fn forgeries_are_refused(junk in "\\PC{0,200}", at in 0usize..40) {
            let keys = Keys::hs256(b"k").unwrap();
            let p = Policy::default();
            proptest::prop_assert!(verify(&keys, &p, &junk, Action::Play, "a/b", 0.0).is_err());
            let good = hs(serde_json::json!({"play": "*"}), b"k");
            let sig = good.rfind('.').unwrap() + 1;
            let i = sig + at % (good.len() - sig - 1);
            let mut forged = good.into_bytes();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            proptest::prop_assert!(verify(&keys, &p, &forged, Action::Play, "a/b", 0.0).is_err());
        }

        /// A JWK set of any shape loads keys or says why, never panics.
        #[test]
        fn any_jwk_set(doc in "\\PC{0,120}") {
            let text = format!(r#"{{"keys":[{doc}]}}"#);
            if let Ok(k) = Keys::from_jwks(text.as_bytes()) {
                proptest::prop_assert!(!k.is_empty());
            }
            let _ = Keys::from_file_contents(doc.as_bytes());
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = Keys::hs256(b"k").unwrap();
        // {"alg":"none"}.{"play":"*"}.
        let t = "eyJhbGciOiJub25lIn0.eyJwbGF5IjoiKiJ9.";
        assert!(verify(&keys, &Policy::default(), t, Action::Play, "a/b", 0.0).is_err());
    }
}
