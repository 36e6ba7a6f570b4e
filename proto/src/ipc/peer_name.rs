//! The `Hello.name` convention (FORMAT.md, section 3): `component/pid`, followed by
//! ` conn_id=N` when the connection serves exactly one client connection of the sender
//! (an ingest's link for one publisher, a player handoff). The receiver logs that client
//! under the same `conn_id`, so one id names one client in every process. The name stays
//! free text for peers that do not follow the convention: a missing or unreadable suffix
//! only means there is no client id.

/// The suffix that introduces the client connection id.
const CONN_ID: &str = " conn_id=";

/// The `Hello.name` of `component` running as `pid`, serving client `conn_id` if any.
pub fn hello_name(component: &str, pid: u32, conn_id: Option<u64>) -> String {
    match conn_id {
        Some(id) => format!("{component}/{pid}{CONN_ID}{id}"),
        None => format!("{component}/{pid}"),
    }
}

/// The client connection id a `Hello.name` carries, if it follows the convention.
pub fn hello_conn_id(name: &str) -> Option<u64> {
    let (_, id) = name.rsplit_once(CONN_ID)?;
    // Digits only: `u64::from_str` would also take a leading `+`.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(
            hello_name("ingest-rtmp", 42, Some(7)),
            "ingest-rtmp/42 conn_id=7"
        );
        assert_eq!(hello_name("recorder", 9, None), "recorder/9");
        assert_eq!(hello_conn_id("ingest-rtmp/42 conn_id=7"), Some(7));
        assert_eq!(
            hello_conn_id(&hello_name("x", 1, Some(u64::MAX))),
            Some(u64::MAX)
        );
    }

    #[test]
    fn names_without_an_id() {
        for name in [
            "",
            "ingest-rtmp/42",
            "ingest-rtmp",
            "x conn_id=",
            "x conn_id=+7",
            "x conn_id=7a",
            "x conn_id=-1",
            "x conn_id=99999999999999999999",
            "x conn_id= 7",
        ] {
            assert_eq!(hello_conn_id(name), None, "{name:?}");
        }
    }
}
