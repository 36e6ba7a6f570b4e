//! The components a profile can run: their names, what they do (which fixes the start and
//! stop order) and how the supervisor tells that one is ready.

use std::time::Duration;

/// What a component does in the system; it fixes the start order (hub, subscribers,
/// ingest) and the reverse stop order (ingest, subscribers, hub).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The hub: owns `hub.sock`; everything else connects to it.
    Hub,
    /// Reads streams from the hub (recorder, relayer, hookd).
    Subscriber,
    /// Takes publishers in from the network (ingest-rtmp, ingest-srt).
    Ingest,
}

impl Role {
    /// The order in which roles are stopped at shutdown: ingest stops accepting and ends
    /// its streams first, then subscribers flush, then the hub goes.
    pub const STOP_ORDER: [Role; 3] = [Role::Ingest, Role::Subscriber, Role::Hub];
}

/// How the supervisor decides that a freshly started component works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The component logs a line containing this text once it is serving.
    LogLine(&'static str),
    /// The component has no ready line: it counts as ready once it has run this long.
    Running(Duration),
}

/// One kind of component a profile section can name.
#[derive(Debug, PartialEq, Eq)]
pub struct Component {
    /// Section name in a profile, and the binary's file name.
    pub name: &'static str,
    /// What it does.
    pub role: Role,
    /// How readiness is detected.
    pub readiness: Readiness,
    /// The flag through which the supervisor tells it where the hub socket is
    /// (`socket` for the hub itself, `hub` for everyone else). Profiles may not set it
    /// while the profile runs the hub.
    pub socket_flag: &'static str,
    /// Whether it reloads files in place on SIGHUP (auth files, keys, certificates,
    /// passphrase files, rules files); the supervisor forwards its SIGHUP only to these
    /// (SIGHUP would end the others).
    pub reloads_on_hangup: bool,
    /// The flags it also reads from its `--rules-file` and reloads in place on SIGHUP:
    /// the supervisor writes them to a rules file in the runtime directory instead of
    /// passing them, so that changing only these reloads instead of restarting.
    pub rules_keys: &'static [&'static str],
}

/// Every component the supervisor knows, in start order. A component whose crate has not
/// landed yet is listed so its section is recognised; `check` then reports its missing
/// binary.
pub static COMPONENTS: [Component; 6] = [
    Component {
        name: "hub",
        role: Role::Hub,
        readiness: Readiness::LogLine("listening on unix:"),
        socket_flag: "socket",
        reloads_on_hangup: true,
        rules_keys: &[],
    },
    Component {
        name: "recorder",
        role: Role::Subscriber,
        readiness: Readiness::LogLine("connected to the hub"),
        socket_flag: "hub",
        reloads_on_hangup: false,
        rules_keys: &[],
    },
    Component {
        name: "relayer",
        role: Role::Subscriber,
        readiness: Readiness::LogLine("connected to the hub"),
        socket_flag: "hub",
        reloads_on_hangup: true,
        rules_keys: &["push"],
    },
    Component {
        name: "hookd",
        role: Role::Subscriber,
        readiness: Readiness::LogLine("connected to the hub"),
        socket_flag: "hub",
        reloads_on_hangup: true,
        rules_keys: &["webhook", "exec"],
    },
    Component {
        name: "ingest-rtmp",
        role: Role::Ingest,
        readiness: Readiness::LogLine("listening on rtmp://"),
        socket_flag: "hub",
        reloads_on_hangup: true,
        rules_keys: &[],
    },
    Component {
        name: "ingest-srt",
        role: Role::Ingest,
        readiness: Readiness::LogLine("listening on srt://"),
        socket_flag: "hub",
        reloads_on_hangup: true,
        rules_keys: &[],
    },
];

/// The component called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.name == name)
}

/// The position of `component` in the start order.
pub(crate) fn start_rank(component: &Component) -> usize {
    COMPONENTS
        .iter()
        .position(|c| c.name == component.name)
        .unwrap_or(usize::MAX)
}
