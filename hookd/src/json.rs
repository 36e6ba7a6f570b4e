//! One event as JSON: `{"kind","key","conn_id","remote","id","time_ms","seq","fields":{..}}`
//! (the stamp fields lifted to the top, every other field under `fields`).

use proto::ipc::Event;
use serde_json::{Map, Value};

/// The JSON object of `event` (FORMAT.md section 3.1 names its fields).
pub fn to_json(event: &Event) -> String {
    let mut top = Map::new();
    top.insert("kind".into(), Value::from(event.kind.as_str()));
    top.insert("key".into(), Value::from(event.key.as_str()));
    top.insert("conn_id".into(), Value::from(event.conn_id));
    top.insert("remote".into(), Value::from(event.remote.as_str()));
    let mut fields = Map::new();
    for (name, value) in &event.fields {
        match name.as_str() {
            "id" => {
                top.insert("id".into(), Value::from(value.as_str()));
            }
            "time_ms" | "seq" => {
                let v = value
                    .parse::<u64>()
                    .map_or_else(|_| Value::from(value.as_str()), Value::from);
                top.insert(name.clone(), v);
            }
            _ => {
                fields.insert(name.clone(), Value::from(value.as_str()));
            }
        }
    }
    top.insert("fields".into(), Value::Object(fields));
    Value::Object(top).to_string()
}

/// The value of field `name`, if the event has it.
pub fn field<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_on_top_fields_below() {
        let e = Event {
            kind: "publish".into(),
            key: "live/a\"b".into(),
            conn_id: 7,
            remote: "127.0.0.1:5".into(),
            fields: vec![
                ("width".into(), "640".into()),
                ("id".into(), "x.1".into()),
                ("seq".into(), "3".into()),
            ],
        };
        assert_eq!(
            to_json(&e),
            r#"{"conn_id":7,"fields":{"width":"640"},"id":"x.1","key":"live/a\"b","kind":"publish","remote":"127.0.0.1:5","seq":3}"#
        );
    }
}
