//! A throwaway certificate authority (rcgen) for the RTMPS tests: a CA certificate and
//! server certificates it signs for `localhost` and 127.0.0.1.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// A CA and its key.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate's files.
pub struct ServerCert {
    /// PEM certificate chain (leaf, then the CA).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA called `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// Writes the CA certificate (what a client trusts) to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).expect("write CA");
    }

    /// Issues a server certificate for `localhost` and 127.0.0.1 and writes it and its
    /// key to `cert` and `key`.
    pub fn issue(&self, cert: &Path, key: &Path) -> ServerCert {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf = params
            .signed_by(&leaf_key, &self.cert, &self.key)
            .expect("server certificate");
        std::fs::write(cert, format!("{}{}", leaf.pem(), self.cert.pem())).expect("write cert");
        std::fs::write(key, leaf_key.serialize_pem()).expect("write key");
        ServerCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }
    }
}
