//! The recorder binary against a test [`Server`]: starting it, waiting for its files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::bin;
use crate::deadline_in;
use crate::proc::Proc;
use crate::server::Which;
use crate::Server;

/// Starts `recorder --hub <server> --dir <dir> <extra>` and waits until it is subscribed:
/// the hub logs `subscriber attached` with the recorder's name once every stream that
/// starts afterwards reaches it.
pub fn recorder(server: &Server, dir: &Path, extra: &[&str]) -> Proc {
    let mark = server.log(Which::Hub).len();
    let mut cmd = Command::new(bin("recorder"));
    cmd.arg("--hub")
        .arg(server.socket())
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    let rec = Proc::spawn("recorder", &mut cmd);
    rec.stderr
        .wait_for(0, deadline_in(20.0), |l| l.contains("connected to the hub"))
        .unwrap_or_else(|| panic!("recorder never connected\n{}", rec.describe()));
    let name = format!("name=recorder/{}", rec.pid());
    server
        .log(Which::Hub)
        .wait_for(mark, deadline_in(20.0), |l| {
            l.contains("subscriber attached") && l.contains(&name)
        })
        .unwrap_or_else(|| {
            panic!(
                "the hub never attached the recorder\n{}\n{}",
                rec.describe(),
                server.describe()
            )
        });
    rec
}

/// Waits for the `n`th `recording done` line of the recorder.
pub fn wait_done(rec: &Proc, n: usize) {
    assert!(
        rec.stderr
            .wait_count(n, deadline_in(30.0), |l| l.contains("recording done")),
        "recorder did not finish {n} file(s)\n{}",
        rec.describe()
    );
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
