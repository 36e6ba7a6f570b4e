//! Runs the auth fuzz target bodies (auth/fuzz/src/lib.rs) on deterministic random and
//! mutated inputs, and on every input a fuzzer crashed on
//! (`tests/fuzz_regressions/TARGET-*.bin`), on stable without libFuzzer.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use testenv::fuzz::{regressions, run};

#[test]
fn fuzz_query() {
    run(
        targets::query,
        &[
            b"cam?token=a%2Fb&x=1+2&flag\0live?token=t",
            b"cam?=&&token=%zz&token=%4\0live",
            b"cam\0live?token=obs",
        ],
        3000,
    );
}

#[test]
fn fuzz_jwt() {
    // HS256 {"play":"*"} signed with another secret; alg none; an ES256 header; a JWK set.
    run(
        targets::jwt,
        &[
            b"eyJhbGciOiJIUzI1NiJ9.eyJwbGF5IjoiKiJ9.c2lnbmF0dXJl",
            b"eyJhbGciOiJub25lIn0.eyJwbGF5IjoiKiJ9.",
            b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjIn0.eyJleHAiOjF9.AAAA",
            br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#,
            b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
        ],
        2000,
    );
}

#[test]
fn fuzz_file() {
    run(
        targets::file,
        &[
            b"\0[keys.\"live/*\"]\npublish = \"s\"\nplay = [\"a\", \"b\"]\n\0live/x a",
            b"\x01{\"keys\":{\"a/b\":{\"publish\":\"x\",\"play\":[\"y\"]}}}\0a/b x",
            b"\x01{\"keys\":{\"*\":{}}}\0live/x ",
        ],
        3000,
    );
}

#[test]
fn fuzz_srt_stream_id() {
    run(
        targets::srt_stream_id,
        &[
            b"#!::r=live/cam?token=t&x=1,m=publish,s=sid,u=al,h=host,t=stream,token=item",
            b"#!::r=live/cam,m=request,s=sid",
            b"live/cam?token=plain",
            b"#!:{r=x}",
        ],
        3000,
    );
}

#[test]
fn fuzz_callback_reply() {
    run(
        targets::callback_reply,
        &[
            b"\x00\xc8",
            b"\x00\xc8{\"key\":\"live/renamed\",\"passphrase\":\"0123456789ab\"}",
            b"\x00\xcc{\"passphrase\":\"short\"}",
            b"\x01\x93{}",
            b"\x00\xc8{\"key\":\"../x\"}",
        ],
        3000,
    );
}

#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    regressions(&dir, |target| match target {
        "auth_query" => Some(targets::query),
        "auth_jwt" => Some(targets::jwt),
        "auth_file" => Some(targets::file),
        "auth_srt_stream_id" => Some(targets::srt_stream_id),
        "auth_callback_reply" => Some(targets::callback_reply),
        _ => None,
    });
}
