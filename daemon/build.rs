//! Records the git revision the binary is built from, for `--version` and
//! the `shard_client_build_info` metric: an operator must be able to tell
//! which build a shard runs. Outside a git checkout (a source tarball) the
//! revision is `unknown`.

use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SHARD_CLIENT_REVISION={revision}");
    // A new commit or checkout moves HEAD or a ref: build the revision again.
    for path in ["../.git/HEAD", "../.git/refs", "../.git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
