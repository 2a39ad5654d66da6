//! The committed generated code of every language is what `scripts/gen-thrift.sh` makes of
//! `clients/barista.thrift` today: the server's Rust (`server/src/api/generated.rs`) and the sample
//! clients' `clients/{python,go,javascript,cpp,java}/gen/` trees. A change to the IDL without
//! regenerating, a hand edit of a generated file, or a generated file missing from (or left over
//! in) the repository fails here, naming the file. Takes about a second.
//! Needs thrift-compiler 0.17 (`scripts/setup.sh`); without it this test fails and says so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ is inside the repository").to_owned()
}

/// Every generated path, relative to the repository root: the Rust file and each language's
/// `gen/` directory, as `scripts/gen-thrift.sh` writes them.
const GENERATED: &[&str] = &[
    "server/src/api/generated.rs",
    "clients/python/gen",
    "clients/go/gen",
    "clients/javascript/gen",
    "clients/cpp/gen",
    "clients/java/gen",
];

/// The files under `root/rel` (itself, when it is a file), relative to `root`.
fn files(root: &Path, rel: &Path, out: &mut BTreeSet<PathBuf>) {
    let path = root.join(rel);
    // Python writes its bytecode cache next to the generated modules it imports (git ignores it).
    if rel.file_name().is_some_and(|name| name == "__pycache__") {
        return;
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())) {
            let entry = entry.expect("directory entry");
            files(root, &rel.join(entry.file_name()), out);
        }
    } else if path.exists() {
        out.insert(rel.to_owned());
    }
}

#[test]
fn generated_code_is_up_to_date() {
    let fresh_root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("generated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh_root);
    let run = Command::new(repo().join("scripts/gen-thrift.sh"))
        .arg(&fresh_root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/gen-thrift.sh: {e}"));
    assert!(
        run.status.success(),
        "scripts/gen-thrift.sh failed (is thrift-compiler 0.17 installed? run scripts/setup.sh):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let (mut fresh, mut committed) = (BTreeSet::new(), BTreeSet::new());
    for rel in GENERATED {
        files(&fresh_root, Path::new(rel), &mut fresh);
        files(&repo(), Path::new(rel), &mut committed);
    }
    assert!(!fresh.is_empty(), "scripts/gen-thrift.sh wrote nothing under {}", fresh_root.display());
    let mut stale = Vec::new();
    for rel in fresh.union(&committed) {
        let problem = match (fresh.contains(rel), committed.contains(rel)) {
            (true, false) => "missing from the repository",
            (false, true) => "no longer generated (delete it)",
            _ if std::fs::read(fresh_root.join(rel)).ok() != std::fs::read(repo().join(rel)).ok() => {
                "differs from the generated code"
            }
            _ => continue,
        };
        stale.push(format!("  {}: {problem}", rel.display()));
    }
    let _ = std::fs::remove_dir_all(&fresh_root);
    assert!(
        stale.is_empty(),
        "the committed generated code is stale (clients/barista.thrift or scripts/gen-thrift.sh changed, or a \
         generated file was edited):\n{}\nRun scripts/gen-thrift.sh and commit the result.",
        stale.join("\n")
    );
}
