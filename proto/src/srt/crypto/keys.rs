//! Key state of each direction: the receiver follows the sender's even/odd keys; the sender
//! generates, announces and rotates them.

use bytes::Bytes;

use super::cipher::{derive_kek, unwrap_keys, wrap_keys, Sek};
use super::{CryptoError, KeyLength, Passphrase};
use crate::srt::packet::{EncryptionKey, KeyMaterial, KeyPresence};
use crate::srt::Random;

/// The receiving side's keys: installed from key material (handshake KMREQ or a refresh).
#[derive(Debug)]
pub struct RxKeys {
    passphrase: Passphrase,
    kek: Option<(Bytes, Vec<u8>)>,
    even: Option<Sek>,
    odd: Option<Sek>,
}

impl RxKeys {
    /// No keys yet; `passphrase` unwraps whatever key material arrives.
    pub fn new(passphrase: Passphrase) -> Self {
        RxKeys {
            passphrase,
            kek: None,
            even: None,
            odd: None,
        }
    }

    /// Unwraps and installs the keys of `km`. A key not carried by `km` is kept: during a
    /// rotation the old key still decrypts late retransmissions.
    pub fn handle_key_material(&mut self, km: &KeyMaterial) -> Result<(), CryptoError> {
        if km.cipher != KeyMaterial::CIPHER_AES_CTR {
            return Err(CryptoError::UnsupportedCipher(km.cipher));
        }
        let len = KeyLength::from_bytes(km.key_len).ok_or(CryptoError::Malformed("key length"))?;
        let salt: [u8; 16] = km.salt[..]
            .try_into()
            .map_err(|_| CryptoError::Malformed("salt length"))?;
        let kek = match &self.kek {
            Some((s, k)) if *s == km.salt && k.len() == len.bytes() => k.clone(),
            _ => {
                let k = derive_kek(&self.passphrase, &salt, len);
                self.kek = Some((km.salt.clone(), k.clone()));
                k
            }
        };
        let raw = unwrap_keys(&kek, &km.wrapped)?;
        let n = km.key_len;
        match km.keys {
            KeyPresence::Even => self.even = Some(Sek::new(&raw[..n], salt)?),
            KeyPresence::Odd => self.odd = Some(Sek::new(&raw[..n], salt)?),
            KeyPresence::Both => {
                self.even = Some(Sek::new(&raw[..n], salt)?);
                self.odd = Some(Sek::new(&raw[n..2 * n], salt)?);
            }
        }
        Ok(())
    }

    /// The sending keys of the opposite direction, cloned from these (HSv5 "reverse KMX",
    /// draft 6.1.5): a listener encrypts what it sends with the SEK and salt the caller
    /// announced, under the same passphrase, and from then on refreshes them on its own
    /// schedule. `None` before any key material was installed.
    pub fn sender_keys(&self, refresh_rate: u32, preannounce: u32) -> Option<TxKeys> {
        let (_, kek) = self.kek.clone()?;
        let (active, sek) = match (&self.even, &self.odd) {
            (Some(e), _) => (EncryptionKey::Even, e.clone()),
            (None, Some(o)) => (EncryptionKey::Odd, o.clone()),
            (None, None) => return None,
        };
        let len = KeyLength::from_bytes(sek.raw().len())?;
        let salt = sek.salt();
        let refresh_rate = refresh_rate.max(4);
        let mut keys = TxKeys {
            passphrase: self.passphrase.clone(),
            len,
            salt,
            kek,
            even: (active == EncryptionKey::Even).then(|| sek.clone()),
            odd: (active == EncryptionKey::Odd).then_some(sek),
            active,
            refresh_rate,
            preannounce: preannounce.clamp(1, (refresh_rate - 1) / 2),
            sent_with_active: 0,
            km: placeholder_km(),
        };
        keys.km = keys.build_km();
        Some(keys)
    }

    /// Decrypts a payload in place; false when the key it names is not installed.
    pub fn decrypt(&self, key: EncryptionKey, seq: u32, payload: &mut [u8]) -> bool {
        let sek = match key {
            EncryptionKey::None => return true,
            EncryptionKey::Even => self.even.as_ref(),
            EncryptionKey::Odd => self.odd.as_ref(),
            EncryptionKey::Both => None,
        };
        match sek {
            Some(sek) => {
                sek.apply(seq, payload);
                true
            }
            None => false,
        }
    }
}

/// The sending side's keys with the refresh schedule of draft 6.1.6.
pub struct TxKeys {
    passphrase: Passphrase,
    len: KeyLength,
    salt: [u8; 16],
    kek: Vec<u8>,
    even: Option<Sek>,
    odd: Option<Sek>,
    active: EncryptionKey,
    refresh_rate: u32,
    preannounce: u32,
    sent_with_active: u32,
    km: KeyMaterial,
}

impl std::fmt::Debug for TxKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxKeys")
            .field("len", &self.len)
            .field("active", &self.active)
            .field("sent_with_active", &self.sent_with_active)
            .finish()
    }
}

impl TxKeys {
    /// libsrt's default refresh rate, packets.
    pub const DEFAULT_REFRESH_RATE: u32 = 1 << 24;
    /// libsrt's default pre-announce period, packets.
    pub const DEFAULT_PREANNOUNCE: u32 = 1 << 16;

    /// A fresh salt and even key. `preannounce` is clamped to `(refresh_rate - 1) / 2`, as
    /// libsrt does.
    pub fn new(
        passphrase: Passphrase,
        len: KeyLength,
        refresh_rate: u32,
        preannounce: u32,
        rng: &mut dyn Random,
    ) -> Self {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let kek = derive_kek(&passphrase, &salt, len);
        let refresh_rate = refresh_rate.max(4);
        let preannounce = preannounce.clamp(1, (refresh_rate - 1) / 2);
        let even = new_sek(len, salt, rng);
        let mut keys = TxKeys {
            passphrase,
            len,
            salt,
            kek,
            even: Some(even),
            odd: None,
            active: EncryptionKey::Even,
            refresh_rate,
            preannounce,
            sent_with_active: 0,
            km: placeholder_km(),
        };
        keys.km = keys.build_km();
        keys
    }

    /// The key material currently announced (handshake KMREQ, refreshes).
    pub fn key_material(&self) -> &KeyMaterial {
        &self.km
    }

    /// The key length.
    pub fn key_length(&self) -> KeyLength {
        self.len
    }

    /// The passphrase.
    pub fn passphrase(&self) -> &Passphrase {
        &self.passphrase
    }

    /// Encrypts a new packet's payload in place and returns the key used, plus new key
    /// material when this packet starts or ends a pre-announce period (to be sent as KMREQ).
    pub fn encrypt(
        &mut self,
        seq: u32,
        payload: &mut [u8],
        rng: &mut dyn Random,
    ) -> (EncryptionKey, Option<KeyMaterial>) {
        let mut announce = None;
        self.sent_with_active += 1;
        if self.sent_with_active == self.refresh_rate - self.preannounce {
            let sek = new_sek(self.len, self.salt, rng);
            match self.active {
                EncryptionKey::Odd => self.even = Some(sek),
                _ => self.odd = Some(sek),
            }
            self.km = self.build_km();
            announce = Some(self.km.clone());
        } else if self.sent_with_active >= self.refresh_rate {
            self.active = match self.active {
                EncryptionKey::Even => EncryptionKey::Odd,
                _ => EncryptionKey::Even,
            };
            self.sent_with_active = 0;
        } else if self.sent_with_active == self.preannounce
            && self.even.is_some()
            && self.odd.is_some()
        {
            match self.active {
                EncryptionKey::Even => self.odd = None,
                _ => self.even = None,
            }
            self.km = self.build_km();
            announce = Some(self.km.clone());
        }
        let sek = match self.active {
            EncryptionKey::Odd => self.odd.as_ref(),
            _ => self.even.as_ref(),
        }
        .expect("the active key is always present");
        sek.apply(seq, payload);
        (self.active, announce)
    }

    fn build_km(&self) -> KeyMaterial {
        let (keys, raw) = match (&self.even, &self.odd) {
            (Some(e), Some(o)) => (KeyPresence::Both, [e.raw(), o.raw()].concat()),
            (Some(e), None) => (KeyPresence::Even, e.raw().to_vec()),
            (None, Some(o)) => (KeyPresence::Odd, o.raw().to_vec()),
            (None, None) => unreachable!("a sender always holds a key"),
        };
        KeyMaterial {
            keys,
            keki: 0,
            cipher: KeyMaterial::CIPHER_AES_CTR,
            auth: 0,
            stream_encapsulation: 2,
            salt: Bytes::copy_from_slice(&self.salt),
            key_len: self.len.bytes(),
            wrapped: Bytes::from(wrap_keys(&self.kek, &raw).expect("valid lengths")),
        }
    }
}

fn new_sek(len: KeyLength, salt: [u8; 16], rng: &mut dyn Random) -> Sek {
    let mut raw = vec![0u8; len.bytes()];
    rng.fill(&mut raw);
    Sek::new(&raw, salt).expect("valid length")
}

fn placeholder_km() -> KeyMaterial {
    KeyMaterial {
        keys: KeyPresence::Even,
        keki: 0,
        cipher: 0,
        auth: 0,
        stream_encapsulation: 0,
        salt: Bytes::new(),
        key_len: 16,
        wrapped: Bytes::new(),
    }
}
