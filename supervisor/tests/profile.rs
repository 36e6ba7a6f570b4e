//! Profile parsing and the section -> flags mapping, without processes.

use supervisor::{
    explain, key_flags, parse_profile, section_flags, FlagError, ProfileError, Role,
    DEFAULT_PROFILE,
};

fn flags(toml_text: &str) -> Result<Vec<String>, (String, FlagError)> {
    section_flags(&toml_text.parse::<toml::Table>().expect("valid toml"))
}

fn errors(text: &str) -> Vec<String> {
    parse_profile(text)
        .expect_err("profile should be rejected")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn scalars_map_to_flags() {
    let got = flags(
        r#"
        listen = "0.0.0.0:1935"
        max-connections = 10
        ratio = 1.5
        fsync = true
        quiet = false
        match = ["live/*", "-dash-first"]
        "#,
    )
    .unwrap();
    // toml::Table keeps keys sorted.
    assert_eq!(
        got,
        [
            "--fsync",
            "--listen=0.0.0.0:1935",
            "--match=live/*",
            "--match=-dash-first",
            "--max-connections=10",
            "--ratio=1.5",
        ]
    );
}

#[test]
fn empty_section_and_empty_array_give_no_flags() {
    assert_eq!(flags("").unwrap(), Vec::<String>::new());
    assert_eq!(flags("match = []").unwrap(), Vec::<String>::new());
}

#[test]
fn values_without_a_flag_form_are_rejected_with_their_key() {
    let (key, err) = flags("[nested]\nx = 1").unwrap_err();
    assert_eq!(
        (key.as_str(), err),
        ("nested", FlagError::UnsupportedValue { kind: "table" })
    );
    let (key, err) = flags("when = 1979-05-27T07:32:00Z").unwrap_err();
    assert_eq!(
        (key.as_str(), err),
        ("when", FlagError::UnsupportedValue { kind: "datetime" })
    );
    let (key, err) = flags("m = [\"a\", [\"b\"]]").unwrap_err();
    assert_eq!(
        (key.as_str(), err),
        (
            "m",
            FlagError::UnsupportedItem {
                index: 1,
                kind: "array"
            }
        )
    );
    let (_, err) = flags("m = [true]").unwrap_err();
    assert_eq!(
        err,
        FlagError::UnsupportedItem {
            index: 0,
            kind: "boolean"
        }
    );
}

#[test]
fn bad_flag_names_are_rejected() {
    let mut out = Vec::new();
    let value = toml::Value::Integer(1);
    assert_eq!(
        key_flags("gop_cache_bytes", &value, &mut out),
        Err(FlagError::Underscore {
            suggestion: "gop-cache-bytes".into()
        })
    );
    for bad in ["", "-x", "Listen", "a b", "a=b", "é"] {
        assert_eq!(
            key_flags(bad, &value, &mut out),
            Err(FlagError::InvalidName),
            "{bad:?}"
        );
    }
    assert!(out.is_empty());
}

#[test]
fn default_profile_runs_hub_then_ingest_on_1935_and_4200() {
    let profile = parse_profile(DEFAULT_PROFILE).expect("default profile parses");
    let names: Vec<&str> = profile.sections.iter().map(|s| s.component.name).collect();
    assert_eq!(names, ["hub", "ingest-rtmp", "ingest-srt"]);
    assert!(profile.runs_hub());
    let socket = std::path::Path::new("/r/hub.sock");
    assert_eq!(
        profile.sections[0].args(Some(socket)),
        ["--socket=/r/hub.sock"]
    );
    assert_eq!(
        profile.sections[1].args(Some(socket)),
        ["--listen=0.0.0.0:1935", "--hub=/r/hub.sock"]
    );
    assert_eq!(
        profile.sections[2].args(Some(socket)),
        ["--listen=0.0.0.0:4200", "--hub=/r/hub.sock"]
    );
}

#[test]
fn sections_are_ordered_hub_subscribers_ingest() {
    let profile = parse_profile("[ingest-rtmp]\n[recorder]\n[hub]\n").unwrap();
    let roles: Vec<Role> = profile.sections.iter().map(|s| s.component.role).collect();
    assert_eq!(roles, [Role::Hub, Role::Subscriber, Role::Ingest]);
}

#[test]
fn supervisor_settings_parse() {
    let profile = parse_profile(
        "[supervisor]\nruntime_dir = \"/x\"\nrestart_backoff_min = \"10ms\"\n\
         restart_backoff_max = \"1s\"\nmax_start_failures = 3\nshutdown_timeout = \"3s\"\n[hub]\n",
    )
    .unwrap();
    let s = &profile.settings;
    assert_eq!(s.runtime_dir.as_deref(), Some(std::path::Path::new("/x")));
    assert_eq!(s.restart_backoff_min, std::time::Duration::from_millis(10));
    assert_eq!(s.restart_backoff_max, std::time::Duration::from_secs(1));
    assert_eq!(s.max_start_failures, 3);
    assert_eq!(s.shutdown_timeout, std::time::Duration::from_secs(3));
}

#[test]
fn zero_backoff_and_overflowing_durations_are_refused() {
    let e = errors("[supervisor]\nrestart_backoff_min = \"0s\"\n[hub]\n");
    assert!(
        e.iter()
            .any(|l| l.contains("restart_backoff_min") && l.contains("more than 0")),
        "{e:?}"
    );
    let e = errors("[supervisor]\nshutdown_timeout = \"100000000y\"\n[hub]\n");
    assert!(
        e.iter()
            .any(|l| l.contains("shutdown_timeout") && l.contains("maximum")),
        "{e:?}"
    );
    let e = errors("[supervisor]\nrestart_backoff_reset = \"2days\"\n[hub]\n");
    assert!(
        e.iter().any(|l| l.contains("restart_backoff_reset")),
        "{e:?}"
    );
}

#[test]
fn invalid_profiles_name_section_key_and_reason() {
    let e = errors("[hub]\n[ingest-rmtp]\nlisten = \"x\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("[ingest-rmtp]: unknown section"), "{e:?}");

    let e = errors("[supervisor]\nshutdown_timout = \"1s\"\n[hub]\n");
    assert!(
        e[0].starts_with("[supervisor] shutdown_timout: unknown setting"),
        "{e:?}"
    );

    let e = errors("[supervisor]\nshutdown_timeout = \"soon\"\n[hub]\n");
    assert!(
        e[0].starts_with("[supervisor] shutdown_timeout: invalid duration"),
        "{e:?}"
    );

    let e = errors("[supervisor]\nmax_start_failures = 0\n[hub]\n");
    assert!(
        e[0].starts_with("[supervisor] max_start_failures:"),
        "{e:?}"
    );

    let e = errors("[hub]\nsocket = \"/tmp/x.sock\"\n[ingest-rtmp]\nhub = \"/y\"\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("[hub] socket: set by the supervisor"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("[ingest-rtmp] hub: set by the supervisor"),
        "{e:?}"
    );

    let e = errors("[hub]\ncheck = true\n");
    assert!(
        e[0].starts_with("[hub] check: set by the supervisor"),
        "{e:?}"
    );

    let e = errors("[ingest-rtmp]\nlisten = { host = \"x\" }\n[hub]\n");
    assert!(
        e[0].starts_with("[ingest-rtmp] listen: a table cannot"),
        "{e:?}"
    );

    let e = errors("hub = 1\n");
    assert!(e[0].starts_with("[hub]: expected a section"), "{e:?}");

    assert_eq!(
        errors(""),
        ["the profile has no component section (e.g. [hub])"]
    );
    assert!(errors("[hub\n")[0].starts_with("not valid TOML"));
}

#[test]
fn locations_point_at_section_and_key() {
    let errs = parse_profile("[hub]\nbad_key = 1\n").unwrap_err();
    let loc = errs[0].location().unwrap();
    assert_eq!(loc.to_string(), "[hub] bad_key");
    assert!(matches!(errs[0], ProfileError::Flag { .. }));
}

#[test]
fn a_profile_without_hub_may_point_components_at_another_hub() {
    let profile = parse_profile("[ingest-rtmp]\nhub = \"/other/hub.sock\"\n").unwrap();
    assert!(!profile.runs_hub());
    assert_eq!(profile.sections[0].args(None), ["--hub=/other/hub.sock"]);
}

#[test]
fn clap_errors_map_back_to_keys() {
    let flags = vec!["--listen=nowhere".to_string(), "--bogus=1".to_string()];
    let (key, why) = explain(
        "error: unexpected argument '--bogus' found\n\n  tip: a similar argument exists: '--bogos'\n\nUsage: x",
        &flags,
    );
    assert_eq!(key.as_deref(), Some("bogus"));
    assert_eq!(
        why,
        "unexpected argument '--bogus' found (tip: a similar argument exists: '--bogos')"
    );

    let (key, why) = explain(
        "error: invalid value 'nowhere' for '--listen <ADDR>': invalid socket address syntax\n\nFor more information, try '--help'.\n",
        &flags,
    );
    assert_eq!(key.as_deref(), Some("listen"));
    assert!(why.starts_with("invalid value 'nowhere'"), "{why}");

    // A flag the supervisor added (not from the profile) is not blamed on a key.
    let (key, _) = explain("error: invalid value 'x' for '--hub <PATH>': bad\n", &flags);
    assert_eq!(key, None);

    let (key, why) = explain("error: unexpected argument '--check' found\n", &flags);
    assert_eq!(key, None);
    assert!(why.contains("does not support --check"), "{why}");

    let (key, why) = explain("thread 'main' panicked\n", &flags);
    assert_eq!((key, why.as_str()), (None, "thread 'main' panicked"));
}
