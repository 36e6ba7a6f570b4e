//! The async shell around the pure decisions: loads the secrets and keys, reloads them,
//! calls the HTTP callback, fetches the JWKS, and counts failures.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::Method;
use proto::ipc::Event;

use crate::config::{AuthArgs, Mode};
use crate::http::Client;
use crate::jwt::{self, Keys};
use crate::limiter::Limiter;
use crate::request::{Action, Denial, Outcome, Protocol, Request};
use crate::table::{Table, TableError};
use crate::{callback, redact};

/// Most bytes of an auth file, key file or JWK set.
const MAX_FILE: u64 = 4 << 20;
/// Fewest seconds between two JWKS fetches caused by unknown key ids.
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// Why the auth configuration could not be loaded. Never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than 4 MiB.
    #[error("{0}: larger than 4 MiB")]
    TooLarge(PathBuf),
    /// The auth file or a token flag is malformed.
    #[error("{what}: {source}")]
    Table {
        /// The file or flag.
        what: String,
        /// Why.
        source: TableError,
    },
    /// A JWT key could not be used.
    #[error("{what}: {source}")]
    Key {
        /// The file or URL.
        what: String,
        /// Why.
        source: jwt::KeyError,
    },
    /// The JWKS URL could not be fetched.
    #[error("{url}: {why}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let err = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(LoadError::TooLarge(path.to_owned()));
    }
    Ok(buf)
}

fn load_file_table(path: &Path) -> Result<Table, LoadError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let json = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    Table::parse_file(&text, json).map_err(|source| LoadError::Table {
        what: path.display().to_string(),
        source,
    })
}

fn token_table(args: &AuthArgs) -> Result<Table, LoadError> {
    let mut t = Table::default();
    for (action, flags) in [
        (Action::Publish, &args.publish_token),
        (Action::Play, &args.play_token),
    ] {
        for flag in flags {
            let what = format!(
                "--{action}-token {}",
                flag.split('=').next().unwrap_or_default()
            );
            let resolved = match flag.split_once("=@") {
                Some((pattern, file)) => {
                    let secret = read(Path::new(file))?;
                    let secret = String::from_utf8_lossy(&secret);
                    format!("{pattern}={}", secret.trim_end_matches(['\r', '\n']))
                }
                None => flag.clone(),
            };
            t.add_flag(action, &resolved)
                .map_err(|source| LoadError::Table { what, source })?;
        }
    }
    Ok(t)
}

struct JwtSource {
    policy: jwt::Policy,
    key_file: Option<PathBuf>,
    secret_file: Option<PathBuf>,
    jwks: Option<String>,
    /// Keys from the files and from the URL, kept apart so either reloads alone.
    file_keys: RwLock<Vec<Keys>>,
    url_keys: RwLock<Keys>,
    last_fetch: Mutex<Option<Instant>>,
}

impl JwtSource {
    fn load_files(&self) -> Result<Vec<Keys>, LoadError> {
        let mut out = Vec::new();
        if let Some(path) = &self.key_file {
            let keys = Keys::from_file_contents(&read(path)?).map_err(|source| LoadError::Key {
                what: path.display().to_string(),
                source,
            })?;
            out.push(keys);
        }
        if let Some(path) = &self.secret_file {
            let secret = read(path)?;
            let secret = secret.strip_suffix(b"\n").unwrap_or(&secret);
            let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
            out.push(Keys::hs256(secret).map_err(|source| LoadError::Key {
                what: path.display().to_string(),
                source,
            })?);
        }
        Ok(out)
    }
}

struct Inner {
    publish: Mode,
    play: Mode,
    tokens: Table,
    file: Option<PathBuf>,
    file_table: RwLock<Table>,
    callback: Option<String>,
    callback_timeout: Duration,
    http: Client,
    jwt: JwtSource,
    jwks_refresh: Duration,
    limiter: Mutex<Limiter>,
}

/// Decides publish and play attempts; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("publish", &self.inner.publish)
            .field("play", &self.inner.play)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Authenticator {
    /// Reads what the modes in use need (token files, the auth file, JWT keys, the JWKS
    /// URL). Call [`AuthArgs::problems`] first.
    pub async fn load(args: &AuthArgs) -> Result<Authenticator, LoadError> {
        let uses = |m| args.publish_auth == m || args.play_auth == m;
        let tokens = if uses(Mode::Token) {
            token_table(args)?
        } else {
            Table::default()
        };
        let file_table = match (&args.auth_file, uses(Mode::File)) {
            (Some(path), true) => load_file_table(path)?,
            _ => Table::default(),
        };
        let jwt = JwtSource {
            policy: jwt::Policy {
                issuer: args.jwt_issuer.clone(),
                audience: args.jwt_audience.clone(),
            },
            key_file: args.jwt_key.clone(),
            secret_file: args.jwt_secret_file.clone(),
            jwks: args.jwt_jwks.clone().filter(|_| uses(Mode::Jwt)),
            file_keys: RwLock::new(Vec::new()),
            url_keys: RwLock::new(Keys::default()),
            last_fetch: Mutex::new(None),
        };
        if uses(Mode::Jwt) {
            *jwt.file_keys.write().unwrap_or_else(|p| p.into_inner()) = jwt.load_files()?;
        }
        let auth = Authenticator {
            inner: Arc::new(Inner {
                publish: args.publish_auth,
                play: args.play_auth,
                tokens,
                file: args.auth_file.clone().filter(|_| uses(Mode::File)),
                file_table: RwLock::new(file_table),
                callback: args.auth_callback.clone().filter(|_| uses(Mode::Callback)),
                callback_timeout: args.auth_callback_timeout,
                http: Client::new(),
                jwt,
                jwks_refresh: args.jwt_jwks_refresh,
                limiter: Mutex::new(Limiter::new(
                    args.auth_max_failures,
                    args.auth_failure_window,
                )),
            }),
        };
        if let Err(e) = auth.fetch_jwks().await {
            // The identity provider may be down for a moment: start anyway; tokens are
            // refused until a fetch succeeds (tried again for each unknown key id, at most
            // every 30 s, and every --jwt-jwks-refresh).
            tracing::warn!(error = %e, "JWKS not loaded at start; JWT tokens are refused until it is");
        }
        Ok(auth)
    }

    /// The mode of `action`.
    pub fn mode(&self, action: Action) -> Mode {
        match action {
            Action::Publish => self.inner.publish,
            Action::Play => self.inner.play,
        }
    }

    /// Logs at warn level when anyone who reaches `listen` may publish (publish auth `none`
    /// on an address that is not loopback).
    pub fn warn_if_open(&self, listen: SocketAddr, protocol: &str) {
        if self.inner.publish == Mode::None && !listen.ip().is_loopback() {
            tracing::warn!(
                "publish auth is none: anyone who can reach {protocol}://{listen} can publish, \
                 and take over, any stream key (set --publish-auth)"
            );
        }
    }

    /// Whether `ip` has failed too often recently (refuse it at connect).
    pub fn is_locked(&self, ip: IpAddr) -> bool {
        lock(&self.inner.limiter).is_locked(ip, Instant::now())
    }

    /// Refuses a locked-out address before it names a key (RTMP refuses at `connect`):
    /// logs it and returns the `auth_denied` event to report (action `connect`, reason
    /// `lockout`, no key), or `None` when `remote` is not locked out.
    pub fn lockout(&self, protocol: Protocol, remote: SocketAddr, conn_id: u64) -> Option<Event> {
        if !self.is_locked(remote.ip()) {
            return None;
        }
        let d = Denial::RateLimited;
        tracing::info!(protocol = protocol.as_str(), %remote, reason = %d, "auth denied at connect");
        Some(Event {
            kind: crate::request::EVENT_DENIED.to_owned(),
            key: String::new(),
            conn_id,
            remote: remote.to_string(),
            fields: vec![
                ("action".to_owned(), "connect".to_owned()),
                ("protocol".to_owned(), protocol.as_str().to_owned()),
                ("reason".to_owned(), d.code().to_owned()),
                ("error".to_owned(), d.to_string()),
            ],
        })
    }

    /// Decides `req`, logs the decision (no secrets) and counts failures. The caller sends
    /// [`Self::event`] of the outcome to the hub.
    pub async fn authorize(&self, req: &Request) -> Outcome {
        let mode = self.mode(req.action);
        let outcome = if self.is_locked(req.remote.ip()) {
            Outcome::Deny(Denial::RateLimited)
        } else {
            self.decide(mode, req).await
        };
        let params = redact::params(&req.params);
        match &outcome {
            Outcome::Allow { key, .. } => {
                tracing::info!(action = %req.action, key = %req.key, granted_key = %key,
                    mode = mode.as_str(), protocol = req.protocol.as_str(), %params, "auth allowed");
            }
            Outcome::Deny(d) => {
                if !matches!(d, Denial::RateLimited) {
                    lock(&self.inner.limiter).failed(req.remote.ip(), Instant::now());
                }
                tracing::info!(action = %req.action, key = %req.key, mode = mode.as_str(),
                    protocol = req.protocol.as_str(), %params, reason = %d, "auth denied");
            }
        }
        outcome
    }

    /// The event reporting `outcome` of `req` (kinds `auth_allowed`, `auth_denied`).
    pub fn event(&self, req: &Request, outcome: &Outcome) -> Event {
        outcome.event(req, self.mode(req.action).as_str())
    }

    async fn decide(&self, mode: Mode, req: &Request) -> Outcome {
        let allow = || Outcome::Allow {
            key: req.key.clone(),
            passphrase: None,
        };
        let verdict = match mode {
            Mode::None => Ok(()),
            Mode::Token => self.inner.tokens.check(req.action, &req.key, req.token()),
            Mode::File => self
                .inner
                .file_table
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .check(req.action, &req.key, req.token()),
            Mode::Jwt => self.check_jwt(req).await,
            Mode::Callback => return self.call(req).await,
        };
        match verdict {
            Ok(()) => allow(),
            Err(d) => Outcome::Deny(d),
        }
    }

    async fn check_jwt(&self, req: &Request) -> Result<(), Denial> {
        let token = req.token().ok_or(Denial::MissingToken)?;
        let src = &self.inner.jwt;
        if src.jwks.is_some()
            && src
                .url_keys
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .lacks_kid_of(token)
        {
            let due = lock(&src.last_fetch).is_none_or(|t| t.elapsed() >= JWKS_MIN_INTERVAL);
            if due {
                if let Err(e) = self.fetch_jwks().await {
                    tracing::warn!(error = %e, "JWKS refresh for an unknown key id failed");
                }
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut sets: Vec<Keys> = src
            .file_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        sets.push(
            src.url_keys
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        );
        let mut last = Denial::BadJwt("no verification key".into());
        for keys in sets.iter().filter(|k| !k.is_empty()) {
            match jwt::verify(keys, &src.policy, token, req.action, &req.key, now) {
                Ok(()) => return Ok(()),
                // A signature failure may just mean another set holds the key.
                Err(d @ Denial::BadJwt(_)) => last = d,
                Err(d) => return Err(d),
            }
        }
        Err(last)
    }

    async fn call(&self, req: &Request) -> Outcome {
        let Some(url) = &self.inner.callback else {
            return Outcome::Deny(Denial::CallbackFailed("no callback URL".into()));
        };
        match self
            .inner
            .http
            .request(
                Method::POST,
                url,
                Some(callback::body(req)),
                self.inner.callback_timeout,
                callback::MAX_REPLY,
            )
            .await
        {
            Ok((status, body)) => callback::outcome(req, status, &body),
            Err(e) => Outcome::Deny(Denial::CallbackFailed(e.to_string())),
        }
    }

    async fn fetch_jwks(&self) -> Result<(), LoadError> {
        let src = &self.inner.jwt;
        let Some(url) = &src.jwks else {
            return Ok(());
        };
        *lock(&src.last_fetch) = Some(Instant::now());
        let fetch_err = |why: String| LoadError::Fetch {
            url: url.clone(),
            why,
        };
        let (status, body) = self
            .inner
            .http
            .request(
                Method::GET,
                url,
                None,
                self.inner.callback_timeout.max(Duration::from_secs(5)),
                MAX_FILE as usize,
            )
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(fetch_err(format!("HTTP {status}")));
        }
        let keys = Keys::from_jwks(&body).map_err(|source| LoadError::Key {
            what: url.clone(),
            source,
        })?;
        tracing::info!(%url, keys = keys.len(), "JWKS loaded");
        *src.url_keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    /// Refetches the JWKS every `--jwt-jwks-refresh` for as long as the returned task runs
    /// (nothing to do without a JWKS URL).
    pub fn spawn_refresh(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.jwt.jwks.as_ref()?;
        let me = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.inner.jwks_refresh);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.fetch_jwks().await {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                }
            }
        }))
    }

    /// Reloads the auth file, the JWT key files and the JWKS (SIGHUP). What fails to load
    /// keeps its previous version and is logged with the reason.
    pub async fn reload(&self) {
        if let Some(path) = &self.inner.file {
            match load_file_table(path) {
                Ok(t) => {
                    tracing::info!(path = %path.display(), publish_patterns = t.len(Action::Publish),
                        play_patterns = t.len(Action::Play), "auth file reloaded");
                    *self
                        .inner
                        .file_table
                        .write()
                        .unwrap_or_else(|p| p.into_inner()) = t;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "auth file not reloaded; keeping the previous one")
                }
            }
        }
        let src = &self.inner.jwt;
        if self.inner.publish == Mode::Jwt || self.inner.play == Mode::Jwt {
            match src.load_files() {
                Ok(k) if !k.is_empty() => {
                    tracing::info!("JWT keys reloaded");
                    *src.file_keys.write().unwrap_or_else(|p| p.into_inner()) = k;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "JWT keys not reloaded; keeping the previous ones")
                }
            }
            if let Err(e) = self.fetch_jwks().await {
                tracing::warn!(error = %e, "JWKS not reloaded; keeping the previous keys");
            }
        }
    }

    /// Logs the configuration at start (no secrets).
    pub fn log_summary(&self) {
        let i = &self.inner;
        tracing::info!(
            publish = i.publish.as_str(),
            play = i.play.as_str(),
            token_patterns = i.tokens.len(Action::Publish) + i.tokens.len(Action::Play),
            file = ?i.file,
            callback = i.callback.is_some(),
            "auth"
        );
    }
}
