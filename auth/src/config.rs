//! The auth flags, shared by every ingest binary so that they read alike.

use std::path::PathBuf;
use std::time::Duration;

use crate::request::Action;

/// How one action (publish or play) is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Everyone may.
    None,
    /// A secret per key pattern from `--publish-token`/`--play-token`, offered as `token`.
    Token,
    /// Secrets per key pattern from `--auth-file`, reloaded on SIGHUP.
    File,
    /// An HTTP POST to `--auth-callback` decides.
    Callback,
    /// A JSON Web Token offered as `token`, verified with `--jwt-*` keys.
    Jwt,
}

impl Mode {
    /// The name used in flags, logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Token => "token",
            Mode::File => "file",
            Mode::Callback => "callback",
            Mode::Jwt => "jwt",
        }
    }
}

/// The auth flags (flattened into each ingest's command line).
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Who may publish: none, token, file, callback or jwt.
    #[arg(long, value_enum, default_value = "none")]
    pub publish_auth: Mode,
    /// Who may play: none, token, file, callback or jwt.
    #[arg(long, value_enum, default_value = "none")]
    pub play_auth: Mode,
    /// token mode: a publish secret for a key or key pattern (`*` matches any run of
    /// characters), as PATTERN=SECRET, or PATTERN=@FILE to read the secret from a file
    /// (command lines are visible to local users). Repeatable [default: none].
    #[arg(long, value_name = "PATTERN=SECRET")]
    pub publish_token: Vec<String>,
    /// token mode: a play secret, as PATTERN=SECRET or PATTERN=@FILE. Repeatable
    /// [default: none].
    #[arg(long, value_name = "PATTERN=SECRET")]
    pub play_token: Vec<String>,
    /// file mode: a TOML or JSON file (by its `.json`/`.toml` extension, else by its first
    /// character) of key patterns and their publish/play secrets; reloaded on SIGHUP
    /// (a bad file keeps the old one) [default: none].
    #[arg(long, value_name = "PATH")]
    pub auth_file: Option<PathBuf>,
    /// callback mode: the URL (http:// or https://) POSTed a JSON document per attempt;
    /// 2xx allows [default: none].
    #[arg(long, value_name = "URL")]
    pub auth_callback: Option<String>,
    /// callback mode: a callback without a complete answer within this time denies.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub auth_callback_timeout: Duration,
    /// jwt mode: a PEM public key (RSA for RS256, EC P-256 for ES256) or a JWK set file;
    /// reloaded on SIGHUP [default: none].
    #[arg(long, value_name = "PATH")]
    pub jwt_key: Option<PathBuf>,
    /// jwt mode: a file holding the HS256 shared secret (trailing newline ignored);
    /// reloaded on SIGHUP [default: none].
    #[arg(long, value_name = "PATH")]
    pub jwt_secret_file: Option<PathBuf>,
    /// jwt mode: a JWKS URL; fetched at start, every --jwt-jwks-refresh, on SIGHUP and when
    /// a token names an unknown key id (at most every 30 s) [default: none].
    #[arg(long, value_name = "URL")]
    pub jwt_jwks: Option<String>,
    /// jwt mode: how often the JWKS URL is fetched again.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub jwt_jwks_refresh: Duration,
    /// jwt mode: the `iss` tokens must carry [default: any].
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// jwt mode: the `aud` tokens must carry [default: any].
    #[arg(long, value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Failed attempts from one address (IPv6: one /64) within --auth-failure-window after
    /// which it is refused without checking until the window has passed; 0 disables.
    #[arg(long, default_value_t = 10)]
    pub auth_max_failures: u32,
    /// The window of --auth-max-failures.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub auth_failure_window: Duration,
}

impl AuthArgs {
    /// The mode of `action`.
    pub fn mode(&self, action: Action) -> Mode {
        match action {
            Action::Publish => self.publish_auth,
            Action::Play => self.play_auth,
        }
    }

    fn uses(&self, mode: Mode) -> bool {
        self.publish_auth == mode || self.play_auth == mode
    }

    /// What is wrong with the flags, as (flag, value, why); files are read by
    /// [`crate::Authenticator::load`].
    pub fn problems(&self) -> Option<(&'static str, String, String)> {
        for (action, flag, tokens) in [
            (Action::Publish, "publish-auth", &self.publish_token),
            (Action::Play, "play-auth", &self.play_token),
        ] {
            if self.mode(action) == Mode::Token && tokens.is_empty() {
                let why = format!("token mode needs at least one --{action}-token PATTERN=SECRET");
                return Some((flag, "token".into(), why));
            }
        }
        for (flag, tokens) in [
            ("publish-token", &self.publish_token),
            ("play-token", &self.play_token),
        ] {
            if let Some(bad) = tokens
                .iter()
                .find(|t| !t.contains('=') || t.starts_with('='))
            {
                // Only the part before any `=`, which is not secret, is shown.
                let shown = bad.split('=').next().unwrap_or_default().to_owned();
                return Some((
                    flag,
                    shown,
                    "expected PATTERN=SECRET or PATTERN=@FILE".into(),
                ));
            }
        }
        if self.uses(Mode::File) && self.auth_file.is_none() {
            return Some((
                "auth-file",
                String::new(),
                "file mode needs --auth-file PATH".into(),
            ));
        }
        if self.uses(Mode::Callback) {
            match &self.auth_callback {
                None => {
                    return Some((
                        "auth-callback",
                        String::new(),
                        "callback mode needs --auth-callback URL".into(),
                    ))
                }
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return Some((
                        "auth-callback",
                        url.clone(),
                        "must be an http:// or https:// URL".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        if self.auth_callback_timeout.is_zero() {
            return Some((
                "auth-callback-timeout",
                "0s".into(),
                "must be more than 0".into(),
            ));
        }
        if self.uses(Mode::Jwt) {
            let sources = [
                self.jwt_key.is_some(),
                self.jwt_secret_file.is_some(),
                self.jwt_jwks.is_some(),
            ];
            if !sources.contains(&true) {
                return Some((
                    "jwt-key",
                    String::new(),
                    "jwt mode needs --jwt-key, --jwt-secret-file or --jwt-jwks".into(),
                ));
            }
            if let Some(url) = &self.jwt_jwks {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Some((
                        "jwt-jwks",
                        url.clone(),
                        "must be an http:// or https:// URL".into(),
                    ));
                }
            }
        }
        if self.jwt_jwks_refresh.is_zero() {
            return Some((
                "jwt-jwks-refresh",
                "0s".into(),
                "must be more than 0".into(),
            ));
        }
        if self.auth_failure_window.is_zero() {
            return Some((
                "auth-failure-window",
                "0s".into(),
                "must be more than 0".into(),
            ));
        }
        None
    }
}
