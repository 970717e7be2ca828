//! Snapshot test of the generated kernels: every variant the emitters produce is kept in
//! `engine/tests/snapshots/kernels/`, so a change to an emitter shows in review as a diff of the
//! WGSL it generates. After an intended change, rewrite the snapshots with
//! `MTDIFF_UPDATE_SNAPSHOTS=1 cargo test -p mtdiff-engine --test kernel_snapshots` and commit them.

use std::collections::BTreeSet;
use std::path::PathBuf;

use mtdiff_engine::ops::sources::{generated_kernels, STATIC_KERNELS};

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/kernels")
}

#[test]
fn generated_kernels_match_their_snapshots() {
    let dir = snapshot_dir();
    let kernels = generated_kernels();
    if std::env::var_os("MTDIFF_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(&dir).expect("create the snapshot folder");
        for old in std::fs::read_dir(&dir).expect("read the snapshot folder") {
            std::fs::remove_file(old.expect("entry").path()).expect("remove an old snapshot");
        }
        for k in &kernels {
            std::fs::write(dir.join(&k.name), &k.source).expect("write a snapshot");
        }
        return;
    }
    let how = "if the change is intended, run `MTDIFF_UPDATE_SNAPSHOTS=1 cargo test -p \
               mtdiff-engine --test kernel_snapshots` and commit the snapshots";
    let mut changed = Vec::new();
    for k in &kernels {
        match std::fs::read_to_string(dir.join(&k.name)) {
            Ok(s) if s == k.source => {}
            Ok(_) => changed.push(format!("{} differs", k.name)),
            Err(_) => changed.push(format!("{} has no snapshot", k.name)),
        }
    }
    let names: BTreeSet<String> = kernels.iter().map(|k| k.name.clone()).collect();
    for f in std::fs::read_dir(&dir).expect("read the snapshot folder") {
        let name = f.expect("entry").file_name().to_string_lossy().into_owned();
        if !names.contains(&name) {
            changed.push(format!("{name} is a snapshot of no generated kernel"));
        }
    }
    assert!(
        changed.is_empty(),
        "generated kernels changed: {}; {how}",
        changed.join(", ")
    );
}

#[test]
fn generated_kernel_names_are_unique() {
    let kernels = generated_kernels();
    let names: BTreeSet<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names.len(), kernels.len());
    assert!(
        kernels.len() > 40,
        "only {} generated kernels",
        kernels.len()
    );
}

#[test]
fn every_compiled_shader_file_is_listed_or_a_template() {
    // Templates are compiled only through their generated variants; the prelude goes in front
    // of every source. Every other file of shaders/ must be in STATIC_KERNELS so the dump has it.
    let templates = [
        "attention.wgsl",
        "attention_vec.wgsl",
        "matmul_regblock.wgsl",
        "matmul_tiled.wgsl",
        "matmul_subgroup.wgsl",
        "conv2d_regblock.wgsl",
        "conv2d_subgroup.wgsl",
        "prelude.wgsl",
    ];
    let shaders = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    for f in std::fs::read_dir(shaders).expect("read shaders/") {
        let name = f.expect("entry").file_name().to_string_lossy().into_owned();
        let listed = STATIC_KERNELS.iter().any(|k| k.file == name);
        assert!(
            listed != templates.contains(&name.as_str()),
            "shaders/{name} must be either in STATIC_KERNELS or a known template, not both"
        );
    }
}
