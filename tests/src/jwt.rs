//! Signing keys for the JWT tests, made fresh by each test as an identity provider would
//! hold them: RSA keys (RS256) by `openssl genpkey` (ring, which signs here, cannot
//! generate RSA keys), EC P-256 keys (ES256) by rcgen. Each gives its public key as PEM
//! (for `--jwt-key`) and as a JWK (for a JWKS URL), and signs claims into a token.

use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// A private key and what a server needs to verify its tokens.
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<String>,
    encoding: EncodingKey,
    public_pem: String,
    /// The JWK members that describe the public key (`kty`, `n`/`e` or `crv`/`x`/`y`).
    jwk: serde_json::Value,
}

/// Runs `openssl args...` and returns its stdout; panics with its stderr on failure.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A new 2048-bit RSA key for RS256; its private PEM is written to `dir/name.key`.
    pub fn rsa(dir: &Path, name: &str) -> SigningKey {
        let path = dir.join(format!("{name}.key"));
        let path = path.to_str().expect("UTF-8 temp path");
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path,
        ]);
        let private = std::fs::read(path).expect("read the RSA key");
        let public_pem =
            String::from_utf8(openssl(&["pkey", "-in", path, "-pubout"])).expect("PEM is ASCII");
        let modulus =
            String::from_utf8(openssl(&["rsa", "-in", path, "-noout", "-modulus"])).expect("ASCII");
        let hex = modulus
            .trim()
            .strip_prefix("Modulus=")
            .expect("openssl prints Modulus=HEX");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex modulus"))
            .collect();
        SigningKey {
            alg: Algorithm::RS256,
            kid: None,
            encoding: EncodingKey::from_rsa_pem(&private).expect("RSA private key"),
            public_pem,
            // genpkey's public exponent is 65537.
            jwk: serde_json::json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"}),
        }
    }

    /// A new EC P-256 key for ES256.
    pub fn ec() -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256");
        // The uncompressed point: 0x04, x, y.
        let point = pair.public_key_raw();
        SigningKey {
            alg: Algorithm::ES256,
            kid: None,
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
                .expect("EC private key"),
            public_pem: pair.public_key_pem(),
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        }
    }

    /// The same key, naming itself `kid` in its JWK and in the tokens it signs.
    pub fn with_kid(mut self, kid: &str) -> SigningKey {
        self.kid = Some(kid.to_owned());
        self
    }

    /// The public key as PEM (`--jwt-key`).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public key as a JWK with its `alg`, `use` and `kid`.
    pub fn jwk(&self) -> serde_json::Value {
        let mut jwk = self.jwk.clone();
        jwk["alg"] = format!("{:?}", self.alg).into();
        jwk["use"] = "sig".into();
        if let Some(kid) = &self.kid {
            jwk["kid"] = kid.as_str().into();
        }
        jwk
    }

    /// A token of `claims` signed with this key (its `kid` in the header, if any).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.token(self.kid.as_deref(), claims)
    }

    /// A token of `claims` that names `kid` in its header but is signed with this key (a
    /// forgery of another key's tokens).
    pub fn sign_as(&self, kid: &str, claims: &serde_json::Value) -> String {
        self.token(Some(kid), claims)
    }

    fn token(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign a token")
    }
}

/// A JWK set document of `keys`' public keys.
pub fn jwks(keys: &[&SigningKey]) -> String {
    let keys: Vec<_> = keys.iter().map(|k| k.jwk()).collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Seconds since the Unix epoch, as `exp` and `nbf` count them.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
