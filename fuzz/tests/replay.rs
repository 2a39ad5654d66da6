//! Replays every committed corpus file (`corpus/<target>/*`: seeds and regression inputs)
//! through its target function, on the stable toolchain and without a fuzzer, so CI keeps them
//! passing; and the seeds the code builds (`BARISTA_WRITE_SEEDS=1` writes them to the corpus).

use std::path::{Path, PathBuf};
use std::time::Instant;

use barista_fuzz::{TARGETS, seeds};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

#[test]
fn every_corpus_file_passes_its_target() {
    for (target, run) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "{target}: only {} corpus files", files.len());
        let started = Instant::now();
        for file in &files {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            eprintln!("replaying {}", file.display());
            run(&data);
        }
        eprintln!("{target}: {} files in {:?}", files.len(), started.elapsed());
    }
}

/// The seeds the code builds pass their targets too (they may differ from the committed ones:
/// the SQL policy's cases change, say). `BARISTA_WRITE_SEEDS=1` writes them into the corpus.
#[test]
fn the_generated_seeds_pass_their_targets() {
    let write = std::env::var_os("BARISTA_WRITE_SEEDS").is_some();
    for (target, inputs) in seeds() {
        let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).expect("every seeded target is listed");
        assert!(inputs.len() >= 3, "{target}: only {} seeds", inputs.len());
        for (name, bytes) in inputs {
            run(&bytes);
            if write {
                let dir = corpus_dir(target);
                std::fs::create_dir_all(&dir).expect("corpus directory");
                std::fs::write(dir.join(format!("seed-{name}")), &bytes).expect("corpus file written");
            }
        }
    }
}
