//! The committed generated code (`server/src/api/generated.rs`) is what `scripts/gen-thrift.sh`
//! makes of `clients/barista.thrift` today: a change to the IDL without regenerating fails here.
//! Needs thrift-compiler 0.17 (`scripts/setup.sh`); without it this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ is inside the repository").to_owned()
}

#[test]
fn generated_code_is_up_to_date() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("generated-{}.rs", std::process::id()));
    let run = Command::new(repo().join("scripts/gen-thrift.sh"))
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/gen-thrift.sh: {e}"));
    assert!(
        run.status.success(),
        "scripts/gen-thrift.sh failed (is thrift-compiler 0.17 installed? run scripts/setup.sh):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let fresh = std::fs::read_to_string(&out).expect("read the regenerated code");
    let _ = std::fs::remove_file(&out);
    let committed =
        std::fs::read_to_string(repo().join("server/src/api/generated.rs")).expect("read the committed code");
    assert!(
        fresh == committed,
        "server/src/api/generated.rs is stale: clients/barista.thrift changed. Run scripts/gen-thrift.sh and commit \
         the result."
    );
}
